"""Store what devices send: idempotent, FHIR-mapped, triaged, alerts stored before delivery.

The MQTT gateway parses its wire format and hands the parsed items here; this module owns
the batch transaction, the idempotency ledger check and quarantine, and hands every
accepted item to the Recorder all doors share (server/recording.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.device_gateway.questionnaire_payload import QuestionnaireAnswers
from telekol.server.db import utcnow
from telekol.server.metrics import timed_ingest
from telekol.server.models import Device, InboundMessage, QuarantinedMessage
from telekol.server.recording import Recorder


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


class IngestService:
    """Turn parsed deliveries into stored Observations, alerts and quarantine rows."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.engine = engine
        self.clock = clock
        self.new_id = new_id

    @timed_ingest
    def ingest(self, deliveries: Sequence[ParsedDelivery]) -> IngestResult:
        """Store a batch in one transaction; fall back to one by one on a key conflict."""
        try:
            return self._ingest_committed(deliveries)
        except IntegrityError:
            # Another gateway process stored one of these keys first: redo singly,
            # so each conflicting message is answered "duplicate".
            result = IngestResult()
            for delivery in deliveries:
                try:
                    result.extend(self._ingest_committed([delivery]))
                except IntegrityError:
                    result.extend(self._ingest_committed([delivery]))
            return result

    @timed_ingest
    def quarantine(self, delivery: ParsedDelivery, errors: list[str]) -> IngestResult:
        """Keep a whole delivery in quarantine with `errors` and answer each object rejected."""
        with Session(self.engine) as session:
            session.add(QuarantinedMessage(
                received_at=delivery.received_at, topic=delivery.topic[:300],
                device_id=delivery.device_id or None, msg_id=None, errors=_printable(errors),
                payload=delivery.raw))
            session.commit()
        msg_ids = [getattr(item, "msg_id", None) for item in delivery.items] or [None]
        return IngestResult(statuses=[(delivery.device_id, status(m, "rejected", errors))
                                      for m in msg_ids])

    def _ingest_committed(self, deliveries: Sequence[ParsedDelivery]) -> IngestResult:
        with Session(self.engine, expire_on_commit=False) as session:
            batch = _Batch(session, self, deliveries)
            result = batch.run()
            session.commit()
        return result


class _Batch:
    """One transaction's worth of deliveries: ledger checks and quarantine here, the rest in
    the Recorder every door shares (server/recording.py)."""

    def __init__(self, session: Session, service: IngestService,
                 deliveries: Sequence[ParsedDelivery]) -> None:
        self.session = session
        self.service = service
        self.deliveries = deliveries
        self.now = service.clock()
        self.result = IngestResult()

    def run(self) -> IngestResult:
        self._load_context()
        for delivery in self.deliveries:
            for item in delivery.items:
                self._handle(delivery, item)
        self.result.events.extend(self.recorder.finish().events)
        return self.result

    def _load_context(self) -> None:
        device_ids = {d.device_id for d in self.deliveries}
        devices = self.session.exec(select(Device).where(col(Device.id).in_(device_ids))).all()
        self.devices = {d.id: d for d in devices}
        self.recorder = Recorder(self.session, {d.patient_id for d in devices if d.patient_id},
                                 self.now, new_id=self.service.new_id)
        msg_ids = {getattr(i, "msg_id", None) for d in self.deliveries for i in d.items}
        stored = self.session.exec(select(InboundMessage.device_id, InboundMessage.msg_id).where(
            col(InboundMessage.device_id).in_(device_ids),
            col(InboundMessage.msg_id).in_({m for m in msg_ids if m})))
        self.seen = {(row[0], row[1]) for row in stored}

    def _handle(self, delivery: ParsedDelivery, item: Any) -> None:
        errors = getattr(item, "errors", None)
        # A payload that is one object (or garbage) is quarantined byte for byte.
        raw = delivery.raw if len(delivery.items) == 1 else item.raw
        if errors is not None:
            self._reject(delivery, item.msg_id, list(errors), raw)
            return
        device = self.devices.get(delivery.device_id)
        if device is None:
            self._reject(delivery, item.msg_id, [f"device {delivery.device_id} is not known"], raw)
        elif device.patient_id is None or device.patient_id not in self.recorder.patients:
            self._reject(delivery, item.msg_id,
                         [f"device {delivery.device_id} is not assigned to a patient"], raw)
        elif (device.id, item.msg_id) in self.seen:
            self.result.statuses.append((device.id, status(item.msg_id, "duplicate")))
        else:
            self.seen.add((device.id, item.msg_id))
            self._store(delivery, device, item)
            self.result.statuses.append((device.id, status(item.msg_id, "accepted")))

    def _reject(self, delivery: ParsedDelivery, msg_id: str | None, errors: list[str],
                raw: str | bytes) -> None:
        self.session.add(QuarantinedMessage(
            received_at=delivery.received_at, topic=delivery.topic[:300],
            device_id=delivery.device_id or None, msg_id=msg_id, errors=_printable(errors),
            payload=raw.encode("utf-8", "backslashreplace") if isinstance(raw, str) else raw))
        self.result.statuses.append((delivery.device_id, status(msg_id, "rejected", errors)))

    def _store(self, delivery: ParsedDelivery, device: Device, item: Any) -> None:
        patient_id = device.patient_id or ""
        if isinstance(item, QuestionnaireAnswers):
            device.last_seen_at = delivery.received_at
            self.recorder.answers(patient_id, item, received_at=delivery.received_at,
                                  device_id=device.id)
        else:
            _update_device(device, item, delivery.received_at)
            self.recorder.measurement(patient_id, item, source=device.id,
                                      received_at=delivery.received_at, device_id=device.id)


def _printable(errors: list[str]) -> list[str]:
    # Reasons may quote hostile input; keep them storable and readable everywhere.
    return [e.encode("unicode_escape").decode("ascii") if not e.isprintable() else e
            for e in errors]


def _update_device(device: Device, measurement: Any, received_at: datetime) -> None:
    info = measurement.device
    if info is not None:
        device.model = info.model or device.model
        device.firmware = info.firmware or device.firmware
        device.serial = info.serial or device.serial
        device.battery = info.battery if info.battery is not None else device.battery
    device.last_seen_at = received_at
