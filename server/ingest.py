"""Store what devices send: idempotent, FHIR-mapped, triaged, alerts stored before delivery.

Every door that receives readings (the MQTT gateway today) parses its wire format and
hands the parsed items here; this module owns the transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.device_gateway.questionnaire_payload import QuestionnaireAnswers
from telekol.fhir.codes import READING_CODES, type_for_reading
from telekol.fhir.observation import observations_for
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server import alert_lifecycle, events, inbox, rules
from telekol.server.access import team_organizations
from telekol.server.alert_store import AlertUpdate, alert_row, rank, restates_limits, worse
from telekol.server.db import utcnow
from telekol.server.models import (
    Alert,
    Device,
    InboundMessage,
    Patient,
    QuarantinedMessage,
    Threshold,
)
from telekol.server.observation_rows import observation_row, triage_readings
from telekol.server.questionnaires import record_response
from telekol.server.rule_context import BatchContexts, symptom_readings
from telekol.server.triage import (
    AlertRequest,
)


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
        self.open_alerts: dict[tuple[str, str], Alert] = {}
        self.updates: dict[int, AlertUpdate] = {}
        self.alert_events: set[int] = set()  # id() of alerts already queued as events
        self.updated: list[Alert] = []  # stored alerts this batch updated

    def run(self) -> IngestResult:
        self._load_context()
        for delivery in self.deliveries:
            for item in delivery.items:
                self._handle(delivery, item)
        self.session.flush()  # observations first: alerts reference them
        self._apply_updates()
        self.session.add_all(self.alerts)
        self.session.flush()
        for alert, action in [*((a, "created") for a in self.alerts),
                              *((a, "updated") for a in self.updated)]:
            inbox.after_change(self.session, alert, action, "gateway", self.now)  # audit, GP
        self.result.events.extend(self._render_events())
        return self.result

    def _load_context(self) -> None:
        device_ids = {d.device_id for d in self.deliveries}
        devices = self.session.exec(select(Device).where(col(Device.id).in_(device_ids))).all()
        self.devices = {d.id: d for d in devices}
        patient_ids = {d.patient_id for d in devices if d.patient_id}
        self.patients = {p.id: p for p in self.session.exec(
            select(Patient).where(col(Patient.id).in_(patient_ids)))}
        # Only organisations consent lets see the patient hear of the readings.
        self.care_teams = team_organizations(self.session, patient_ids)
        self.thresholds = {(t.patient_id, t.measurement): t for t in self.session.exec(
            select(Threshold).where(col(Threshold.patient_id).in_(patient_ids)))}
        self.contexts = BatchContexts(self.session, patient_ids, self.now, self.thresholds)
        self.open_alerts = {(a.patient_id, a.rule): a for a in self.session.exec(
            select(Alert).where(col(Alert.patient_id).in_(patient_ids),
                                col(Alert.status) != "resolved"))}
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
        elif isinstance(item, QuestionnaireAnswers):
            self._store_answers(delivery, device, item)
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
        triage, _ = triage_readings(
            measurement.readings, lambda code: self.thresholds.get((patient.id, code)))
        mapped = observations_for(measurement, patient_id=patient.id, device_id=device.id,
                                  issued=self.now, triage=triage)
        stored: dict[str, str] = {}
        for type_code, resource in mapped:
            observation = observation_row(
                self.service.new_id(), patient.id, device.id, measurement.msg_id, type_code,
                measurement.taken_at, self.now, resource)
            self.session.add(observation)
            self.pending_events.append(("observation", observation))
            stored[type_code] = observation.id
        late = self._late(patient.id, measurement.taken_at, delivery.received_at)
        readings = [rules.Reading(r.code, r.value, r.unit, measurement.taken_at,
                                  delivery.received_at, late, device.id)
                    for r in measurement.readings if r.code in READING_CODES]
        self._evaluate(patient.id, readings,
                       lambda code: stored.get(type_for_reading(code).code))
        self.result.statuses.append((device.id, status(measurement.msg_id, "accepted")))

    def _store_answers(self, delivery: ParsedDelivery, device: Device,
                       answers: QuestionnaireAnswers) -> None:
        self.seen.add((device.id, answers.msg_id))
        device.last_seen_at = delivery.received_at
        observation = record_response(
            self.session, answers, patient_id=device.patient_id or "", device_id=device.id,
            received_at=delivery.received_at, now=self.now, new_id=self.service.new_id)
        self.pending_events.append(("observation", observation))
        patient_id = observation.patient_id
        late = self._late(patient_id, answers.taken_at, delivery.received_at)
        if answers.questionnaire == "copd-symptoms":
            readings = symptom_readings(answers.answers, answers.taken_at,
                                        delivery.received_at, device.id)
        elif QUESTIONNAIRES[answers.questionnaire].type_code == "cat":
            readings = [rules.Reading("cat", float(observation.value or 0), "{score}",
                                      answers.taken_at, delivery.received_at, device_id=device.id)]
        else:
            readings = []
        readings = [dataclasses.replace(r, late=late) for r in readings]
        self._evaluate(patient_id, readings, lambda code: observation.id)
        self.result.statuses.append((device.id, status(answers.msg_id, "accepted")))

    def _late(self, patient_id: str, taken_at: datetime, received_at: datetime) -> bool:
        """Return whether a reading came from a buffer: taken longer ago than the limit."""
        limit = self.contexts.parameters[patient_id].late_after_minutes.value
        return received_at - taken_at > timedelta(minutes=limit)

    def _evaluate(self, patient_id: str, readings: Sequence[rules.Reading],
                  observation_for: Callable[[str], str | None]) -> None:
        """Run the rules on one message's readings; one request per rule, the worst."""
        self.contexts.add(patient_id, readings)  # readings of one session see each other
        ctx = self.contexts.context(patient_id)
        chosen: dict[str, tuple[AlertRequest, str | None]] = {}
        for reading in readings:
            for request in rules.evaluate(reading, ctx):
                if restates_limits(request, ctx):
                    continue
                current = chosen.get(request.rule)
                if current is None or rank(request.severity) >= rank(current[0].severity):
                    chosen[request.rule] = (request, observation_for(reading.code))
        for request, observation_id in chosen.values():
            self._raise(patient_id, observation_id, request)

    def _raise(self, patient_id: str, observation_id: str | None,
               request: AlertRequest) -> None:
        """Open an alert, or update the unresolved one of the same patient and rule."""
        alert = self.open_alerts.get((patient_id, request.rule))
        if alert is None:
            alert = alert_row(patient_id, observation_id, request, self.now)
            self.alerts.append(alert)
            self.open_alerts[(patient_id, request.rule)] = alert
        elif alert.id is None:  # opened earlier in this batch, not stored yet
            alert.count += 1
            alert.severity = worse(alert.severity, request.severity)
            alert.reason, alert.details = request.reason[:500], request.details
            alert.last_observation_id = observation_id
        else:
            found = self.updates.get(alert.id)
            self.updates[alert.id] = AlertUpdate(
                alert, (found.repeats if found else 0) + 1,
                worse(found.severity, request.severity) if found else request.severity,
                request, observation_id)
        if id(alert) not in self.alert_events:
            self.alert_events.add(id(alert))
            self.pending_events.append(("alert", alert))

    def _apply_updates(self) -> None:
        """Update stored alerts in SQL (count + n), safe against another gateway process."""
        for alert_id, change in self.updates.items():
            severity = (change.severity if change.severity == "red" else
                        case((col(Alert.severity) == "red", "red"), else_=change.severity))
            done = self.session.execute(
                update(Alert).where(col(Alert.id) == alert_id, col(Alert.status) != "resolved")
                .values(count=col(Alert.count) + change.repeats, severity=severity,
                        reason=change.request.reason[:500], details=change.request.details,
                        last_observation_id=change.observation_id, updated_at=self.now)
                .execution_options(synchronize_session=False))
            if getattr(done, "rowcount", 1) == 0:  # resolved meanwhile: open a new one
                fresh = alert_row(change.alert.patient_id, change.observation_id,
                                  change.request, self.now)
                fresh.count, fresh.severity = change.repeats, change.severity
                self.alerts.append(fresh)
                self.pending_events = [(k, fresh if r is change.alert else r)
                                       for k, r in self.pending_events]
            else:
                self.session.refresh(change.alert)
                self.updated.append(change.alert)

    def _render_events(self) -> list[dict[str, Any]]:
        rendered = []
        for kind, row in self.pending_events:
            patient = self.patients[row.patient_id]
            rooms = events.rooms_for(patient.id, self.care_teams.get(patient.id, []))
            data = (alert_lifecycle.alert_view(self.session, row, patient) if kind == "alert"
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
