"""Store what devices send: idempotent, FHIR-mapped, triaged, alerts stored before delivery.

The MQTT gateway parses its wire format and hands the parsed items here; this module owns
the batch transaction, the idempotency ledger and quarantine, and hands every new item to
the Recorder all doors share (server/ingest/recorder.py).

A batch is a few statements whatever its size: the ledger rows go in with one
`INSERT .. ON CONFLICT DO NOTHING RETURNING`, whose answer says which keys are new (the
others are duplicates, also when another gateway process stored them a moment earlier);
then one INSERT per table for Observations, responses and quarantine, one UPDATE for the
devices. The rule inputs come from the caller's `ContextCache` when it keeps one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from telekol.server.alerts.context_cache import ContextCache
from telekol.server.audit.log import append_many
from telekol.server.audit.system import stored_batch
from telekol.server.db import utcnow
from telekol.server.device_messages.questionnaire_responses import QuestionnaireAnswers
from telekol.server.ingest.quarantine import QuarantineQuota, admit, quarantine_row
from telekol.server.ingest.recorder import Recorder
from telekol.server.metrics import timed_ingest
from telekol.server.models import Device, InboundMessage, QuarantinedMessage

_LEDGER = InboundMessage.__table__  # type: ignore[attr-defined]
_DEVICES = Device.__table__  # type: ignore[attr-defined]
_QUARANTINE = QuarantinedMessage.__table__  # type: ignore[attr-defined]
_ATTEMPTS = 3
_DEVICE_INFO = ("model", "firmware", "serial", "battery", "last_seen_at")


@dataclass(frozen=True)
class ParsedDelivery:
    """One MQTT message after parsing: where it came from and the items it held."""

    topic: str
    device_id: str
    received_at: datetime
    items: Sequence[Any]  # Measurement | QuestionnaireAnswers | Rejection (device_gateway)
    raw: bytes = b""


@dataclass
class IngestResult:
    """What to tell devices (status per object) and screens (events) after the commit."""

    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: IngestResult) -> None:
        """Append another result's statuses and events."""
        self.statuses.extend(other.statuses)
        self.events.extend(other.events)


def status(msg_id: str | None, result: str, errors: Sequence[str] = ()) -> dict[str, Any]:
    """Return the contract's status message body."""
    return {"msg_id": msg_id, "result": result, "errors": list(errors)}


class RandomIds:
    """Random 128-bit ids in hex, from a buffer of `os.urandom`: one system call per 256.

    A call that releases the GIL in the middle of a batch can leave the worker waiting a
    whole switch interval for paho's busy network thread (uuid4 per row cost 40 us here).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._at = b"", 0

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._buffer):
                self._buffer, self._at = os.urandom(4096), 0
            self._at += 16
            return self._buffer[self._at - 16:self._at].hex()


class IngestService:
    """Turn parsed deliveries into stored Observations, alerts and quarantine rows."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] | None = None,
                 cache: ContextCache | None = None,
                 fence: Callable[[Connection], None] | None = None,
                 quota: QuarantineQuota | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.new_id = new_id or RandomIds()
        self.cache = cache
        # Run as the last statement of every transaction: raises to refuse the commit
        # (a gateway that lost its lease, server/ingest/lease.py).
        self.fence = fence
        self.quota = quota or QuarantineQuota()

    @timed_ingest
    def ingest(self, deliveries: Sequence[ParsedDelivery]) -> IngestResult:
        """Store a batch in one transaction; answer each object accepted, duplicate or
        rejected."""
        for attempt in range(_ATTEMPTS):
            try:
                return self._ingest_once(deliveries)
            except IntegrityError:
                # Another process opened the same alert between our read of the open alerts
                # and our insert (one unresolved alert per patient and rule). The whole
                # batch rolled back, ledger rows too: run it again, it will see that alert.
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _ingest_once(self, deliveries: Sequence[ParsedDelivery]) -> IngestResult:
        with Session(self.engine, expire_on_commit=False) as session:
            batch = _Batch(session, self, deliveries)
            result = batch.run()
            self._check_fence(session)
            session.commit()
        if self.cache is not None:
            self.cache.keep(batch.recorded.history, batch.recorded.counted)
        return result

    @timed_ingest
    def quarantine(self, delivery: ParsedDelivery, errors: list[str]) -> IngestResult:
        """Keep a delivery in quarantine (within the quota) and answer each object rejected."""
        row = quarantine_row(received_at=delivery.received_at, topic=delivery.topic,
                             device_id=delivery.device_id, msg_id=None,
                             errors=_printable(errors), raw=delivery.raw,
                             prefix_bytes=self.quota.prefix_bytes)
        with Session(self.engine) as session:
            kept = admit(session, self.quota, [row])
            if kept:
                session.execute(insert(_QUARANTINE), kept)
            self._check_fence(session)
            session.commit()
        msg_ids = [getattr(item, "msg_id", None) for item in delivery.items] or [None]
        return IngestResult(statuses=[(delivery.device_id, status(m, "rejected", errors))
                                      for m in msg_ids])

    def _check_fence(self, session: Session) -> None:
        if self.fence is not None:
            self.fence(session.connection())


class _Batch:
    """One transaction's worth of deliveries: ledger and quarantine here, the rest in the
    Recorder every door shares (server/ingest/recorder.py)."""

    def __init__(self, session: Session, service: IngestService,
                 deliveries: Sequence[ParsedDelivery]) -> None:
        self.session = session
        self.service = service
        self.deliveries = deliveries
        self.now = service.clock()
        self.result = IngestResult()
        self.quarantined: list[dict[str, Any]] = []

    def run(self) -> IngestResult:
        self._load_devices()
        slots: list[tuple[str, dict[str, Any]] | None] = []  # a status per item, in order
        candidates = []
        for delivery in self.deliveries:
            for item in delivery.items:
                reason = self._problem(delivery, item)
                if reason is None:
                    candidates.append((len(slots), delivery, item, delivery.device_id))
                    slots.append(None)
                else:
                    slots.append(self._reject(delivery, item, reason))
        # All the Python work (mapping, triage, rules) comes before the first write, which
        # on SQLite takes the database's one write lock: held only for the statements, the
        # web server's audit records get in between two batches.
        keys = self._ledger_rows(candidates)
        self._record(candidates, set(keys), slots)
        new = self._claim(list(keys.values()))
        if new != set(keys):
            # Another writer stored some of these keys first: they are duplicates, and what
            # was recorded for them must go. Record again from the batch's start; the keys
            # are ours now (the ledger rows are in), so no third writer can change the set.
            self._begin_recording()
            self._record(candidates, new, slots)
        self.result.statuses = [s for s in slots if s is not None]
        kept = admit(self.session, self.service.quota, self.quarantined)
        if kept:
            self.session.execute(insert(_QUARANTINE), kept)
        self._save_devices()
        self.recorded = self.recorder.finish()
        self.result.events.extend(self.recorded.events)
        # Last, so the chain's append lock is held only for the commit: one INSERT per batch.
        append_many(self.session, stored_batch(self.stored))
        return self.result

    def _record(self, candidates: list[tuple[int, ParsedDelivery, Any, str]],
                new: set[tuple[str, str]], slots: list[Any]) -> None:
        """Store the first item of each new key; answer every candidate."""
        pending = set(new)
        for slot, delivery, item, device_id in candidates:
            key = (device_id, item.msg_id)
            accepted = key in pending
            if accepted:
                pending.discard(key)  # a repeat within the batch is a duplicate
                self._store(delivery, self.devices[device_id], item)
            slots[slot] = (device_id, status(item.msg_id,
                                             "accepted" if accepted else "duplicate"))

    def _load_devices(self) -> None:
        ids = {d.device_id for d in self.deliveries}
        rows = self.session.execute(select(_DEVICES.c.id, _DEVICES.c.patient_id,
                                           *(_DEVICES.c[name] for name in _DEVICE_INFO))
                                    .where(col(_DEVICES.c.id).in_(ids)))
        self.loaded = {row.id: dict(row._mapping) for row in rows}
        self._begin_recording()

    def _begin_recording(self) -> None:
        """Start recording with the devices as loaded and the patients' inputs afresh."""
        self.devices = {key: dict(values) for key, values in self.loaded.items()}
        self.touched: set[str] = set()
        self.stored: dict[tuple[str, str], list[str]] = {}  # (device, patient): msg_ids
        patients = {d["patient_id"] for d in self.devices.values() if d["patient_id"]}
        cache = self.service.cache
        contexts = cache.checkout(self.session, patients, self.now) if cache else None
        self.recorder = Recorder(self.session, patients, self.now, new_id=self.service.new_id,
                                 contexts=contexts, ledger=False)

    def _problem(self, delivery: ParsedDelivery, item: Any) -> list[str] | None:
        errors = getattr(item, "errors", None)
        if errors is not None:
            return list(errors)
        device = self.devices.get(delivery.device_id)
        if device is None:
            return [f"device {delivery.device_id} is not known"]
        if device["patient_id"] is None or device["patient_id"] not in self.recorder.patients:
            return [f"device {delivery.device_id} is not assigned to a patient"]
        return None

    def _ledger_rows(self, candidates: list[tuple[int, ParsedDelivery, Any, str]],
                     ) -> dict[tuple[str, str], dict[str, Any]]:
        """Return the ledger row of each key the candidates hold (the first item's)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for _, delivery, item, device_id in candidates:
            rows.setdefault((device_id, item.msg_id), {
                "device_id": device_id, "msg_id": item.msg_id,
                "patient_id": self.devices[device_id]["patient_id"],
                "received_at": delivery.received_at, "taken_at": item.taken_at})
        return rows

    def _claim(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert the ledger rows of new keys; return the keys this batch stored first."""
        if not rows:
            return set()
        dialect = self.session.get_bind().dialect.name
        insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert_(_LEDGER).on_conflict_do_nothing(
            index_elements=[_LEDGER.c.device_id, _LEDGER.c.msg_id]).returning(
            _LEDGER.c.device_id, _LEDGER.c.msg_id)
        return {(d, m) for d, m in self.session.execute(statement, rows)}

    def _reject(self, delivery: ParsedDelivery, item: Any,
                errors: list[str]) -> tuple[str, dict[str, Any]]:
        # A payload that is one object (or garbage) is quarantined byte for byte.
        raw = delivery.raw if len(delivery.items) == 1 else item.raw
        self.quarantined.append(quarantine_row(
            received_at=delivery.received_at, topic=delivery.topic,
            device_id=delivery.device_id, msg_id=item.msg_id, errors=_printable(errors),
            raw=raw.encode("utf-8", "backslashreplace") if isinstance(raw, str) else raw,
            prefix_bytes=self.service.quota.prefix_bytes))
        return delivery.device_id, status(item.msg_id, "rejected", errors)

    def _store(self, delivery: ParsedDelivery, device: dict[str, Any], item: Any) -> None:
        patient_id, received_at = device["patient_id"], delivery.received_at
        self.touched.add(device["id"])
        self.stored.setdefault((device["id"], patient_id), []).append(item.msg_id)
        device["last_seen_at"] = received_at
        if isinstance(item, QuestionnaireAnswers):
            self.recorder.answers(patient_id, item, received_at=received_at,
                                  device_id=device["id"])
            return
        info = item.device
        if info is not None:
            device["model"] = info.model or device["model"]
            device["firmware"] = info.firmware or device["firmware"]
            device["serial"] = info.serial or device["serial"]
            device["battery"] = info.battery if info.battery is not None else device["battery"]
        self.recorder.add_measurement(patient_id, item, source=device["id"],
                                      received_at=received_at, device_id=device["id"])

    def _save_devices(self) -> None:
        """Write what the batch learnt of its devices: one UPDATE for all of them."""
        if not self.touched:
            return
        statement = update(_DEVICES).where(_DEVICES.c.id == bindparam("device")).values(
            {name: bindparam(name) for name in _DEVICE_INFO})
        self.session.execute(statement, [
            {"device": key, **{name: self.devices[key][name] for name in _DEVICE_INFO}}
            for key in sorted(self.touched)])


def _printable(errors: list[str]) -> list[str]:
    # Reasons may quote hostile input; keep them storable and readable everywhere.
    return [e.encode("unicode_escape").decode("ascii") if not e.isprintable() else e
            for e in errors]
