"""Store what devices send: idempotent, FHIR-mapped, triaged, alerts stored before delivery.

Every door that receives readings (the MQTT gateway today) parses its wire format and
hands the parsed items here; this module owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.observation import Triage, observations_for, profiles_for
from telekol.fhir.reference_range import reference_ranges
from telekol.fhir.validation import validate_resource
from telekol.server import events
from telekol.server.db import utcnow
from telekol.server.models import (
    Alert,
    CareTeamMember,
    Device,
    InboundMessage,
    Observation,
    Patient,
    QuarantinedMessage,
    Threshold,
)
from telekol.server.triage import ThresholdSet, classify, threshold_alert


@dataclass(frozen=True)
class ParsedDelivery:
    """One MQTT message after parsing: where it came from and the items it held."""

    topic: str
    device_id: str
    received_at: datetime
    items: Sequence[Any]  # Measurement | Rejection (device_gateway.payload)
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
    """One transaction's worth of deliveries and the context they need."""

    def __init__(self, session: Session, service: IngestService,
                 deliveries: Sequence[ParsedDelivery]) -> None:
        self.session = session
        self.service = service
        self.deliveries = deliveries
        self.now = service.clock()
        self.result = IngestResult()
        self.seen: set[tuple[str, str]] = set()
        self.pending_events: list[tuple[str, Any]] = []
        self.alerts: list[Alert] = []

    def run(self) -> IngestResult:
        self._load_context()
        for delivery in self.deliveries:
            for item in delivery.items:
                self._handle(delivery, item)
        self.session.flush()  # observations first: alerts reference them
        self.session.add_all(self.alerts)
        self.session.flush()
        self.result.events.extend(self._render_events())
        return self.result

    def _load_context(self) -> None:
        device_ids = {d.device_id for d in self.deliveries}
        devices = self.session.exec(select(Device).where(col(Device.id).in_(device_ids))).all()
        self.devices = {d.id: d for d in devices}
        patient_ids = {d.patient_id for d in devices if d.patient_id}
        self.patients = {p.id: p for p in self.session.exec(
            select(Patient).where(col(Patient.id).in_(patient_ids)))}
        self.care_teams: dict[str, list[str]] = {}
        for member in self.session.exec(select(CareTeamMember).where(
                col(CareTeamMember.patient_id).in_(patient_ids))):
            self.care_teams.setdefault(member.patient_id, []).append(member.organization_id)
        self.thresholds = {(t.patient_id, t.measurement): t for t in self.session.exec(
            select(Threshold).where(col(Threshold.patient_id).in_(patient_ids)))}
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
        elif device.patient_id is None or device.patient_id not in self.patients:
            self._reject(delivery, item.msg_id,
                         [f"device {delivery.device_id} is not assigned to a patient"], raw)
        elif (device.id, item.msg_id) in self.seen:
            self.result.statuses.append((device.id, status(item.msg_id, "duplicate")))
        else:
            self._store(delivery, device, item)

    def _reject(self, delivery: ParsedDelivery, msg_id: str | None, errors: list[str],
                raw: str | bytes) -> None:
        self.session.add(QuarantinedMessage(
            received_at=delivery.received_at, topic=delivery.topic[:300],
            device_id=delivery.device_id or None, msg_id=msg_id, errors=_printable(errors),
            payload=raw.encode("utf-8", "backslashreplace") if isinstance(raw, str) else raw))
        self.result.statuses.append((delivery.device_id, status(msg_id, "rejected", errors)))

    def _store(self, delivery: ParsedDelivery, device: Device, measurement: Any) -> None:
        patient = self.patients[device.patient_id or ""]
        self.seen.add((device.id, measurement.msg_id))
        self.session.add(InboundMessage(
            device_id=device.id, msg_id=measurement.msg_id, patient_id=patient.id,
            received_at=delivery.received_at, taken_at=measurement.taken_at))
        _update_device(device, measurement, delivery.received_at)
        triage, alerts = self._triage(patient.id, measurement)
        mapped = observations_for(measurement, patient_id=patient.id, device_id=device.id,
                                  issued=self.now, triage=triage)
        for type_code, resource in mapped:
            observation = self._observation(patient, device, measurement, type_code, resource)
            self.pending_events.append(("observation", observation))
            request = alerts.get(type_code)
            if request is not None:
                alert = Alert(patient_id=patient.id, observation_id=observation.id,
                              rule=request.rule, severity=request.severity,
                              reason=request.reason, details=request.details,
                              created_at=self.now, updated_at=self.now)
                self.alerts.append(alert)
                self.pending_events.append(("alert", alert))
        self.result.statuses.append((device.id, status(measurement.msg_id, "accepted")))

    def _triage(self, patient_id: str, measurement: Any) -> tuple[dict[str, Triage], dict]:
        triage: dict[str, Triage] = {}
        alerts = {}
        for reading in measurement.readings:
            limits_row = self.thresholds.get((patient_id, reading.code))
            kind = MEASUREMENT_TYPES.get(reading.code)
            if limits_row is None or kind is None:
                continue
            limits = _threshold_set(limits_row)
            found = classify(reading.value, limits)
            ranges = reference_ranges(red_low=limits.red_low, yellow_low=limits.yellow_low,
                                      yellow_high=limits.yellow_high, red_high=limits.red_high,
                                      unit_code=kind.unit, unit_display=kind.unit_display)
            triage[reading.code] = Triage(found.severity, found.direction, ranges)
            request = threshold_alert(_label(reading.code), reading.value, kind.unit_display,
                                      limits)
            if request is not None:
                alerts[reading.code] = request
        return triage, alerts

    def _observation(self, patient: Patient, device: Device, measurement: Any, type_code: str,
                     resource: dict[str, Any]) -> Observation:
        observation_id = self.service.new_id()
        resource = {"resourceType": "Observation", "id": observation_id,
                    "meta": {"versionId": "1", "lastUpdated": _instant(self.now),
                             "profile": profiles_for(type_code)},
                    **{k: v for k, v in resource.items() if k != "resourceType"}}
        validate_resource(resource)
        interpretation = resource.get("interpretation")
        observation = Observation(
            id=observation_id, patient_id=patient.id, device_id=device.id,
            msg_id=measurement.msg_id, type_code=type_code, effective=measurement.taken_at,
            issued=self.now, value=_primary_value(resource),
            severity=_severity(interpretation), last_updated=self.now,
            resource=json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
        self.session.add(observation)
        return observation

    def _render_events(self) -> list[dict[str, Any]]:
        rendered = []
        for kind, row in self.pending_events:
            patient = self.patients[row.patient_id]
            rooms = events.rooms_for(patient.id, self.care_teams.get(patient.id, []))
            data = (events.alert_payload(row, patient) if kind == "alert"
                    else events.observation_payload(row, patient))
            rendered.append({"type": kind, "rooms": rooms, "data": data})
        return rendered


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


def _threshold_set(row: Threshold) -> ThresholdSet:
    return ThresholdSet(row.measurement, row.red_low, row.yellow_low, row.yellow_high,
                        row.red_high, row.set_by, row.set_at)


def _label(code: str) -> str:
    kind = MEASUREMENT_TYPES.get(code)
    return "SpO2" if code == "spo2" else (kind.display_en if kind else code)


def _primary_value(resource: dict[str, Any]) -> float | None:
    quantity = resource.get("valueQuantity")
    if quantity is None and resource.get("component"):
        quantity = resource["component"][0].get("valueQuantity")
    return None if quantity is None else float(quantity["value"])


_INTERPRETATION_SEVERITY = {"LL": "red", "HH": "red", "L": "yellow", "H": "yellow", "N": "green"}


def _severity(interpretation: list[dict[str, Any]] | None) -> str | None:
    if not interpretation:
        return None
    code = interpretation[0]["coding"][0]["code"]
    return _INTERPRETATION_SEVERITY.get(code)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
