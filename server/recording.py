"""Record readings and questionnaire answers from every door in the caller's transaction.

The MQTT gateway (server/ingest.py), the patient's web questionnaires
(server/questionnaires.py), telephone and paper entry (server/phone_entry.py) and
`POST /fhir/Observation` (server/manual_entry.py) all come here, so the same answers raise
the same alert whichever door they came through. A `Recorder` stores the ledger row and
the FHIR Observation (triaged against the patient's limits), runs the alert rules on the
patient's snapshot, opens or updates alerts (one unresolved alert per patient and rule), and
renders the live events the door publishes after its commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select
from telekol.device_gateway.payload import Measurement
from telekol.device_gateway.questionnaire_payload import QuestionnaireAnswers
from telekol.fhir.codes import READING_CODES, type_for_reading
from telekol.fhir.observation import observations_for
from telekol.server import alert_lifecycle, events, inbox, rules
from telekol.server.access import team_organizations
from telekol.server.alert_store import alert_row, lower_than, rank, restates_limits
from telekol.server.models import Alert, InboundMessage, Observation, Patient, Threshold
from telekol.server.observation_rows import observation_row, triage_readings
from telekol.server.questionnaires import answer_readings, record_response
from telekol.server.rule_context import BatchContexts
from telekol.server.triage import AlertRequest

Shape = Callable[[dict[str, Any]], None]  # a door's additions to a mapped Observation


@dataclass
class _Seen:
    """A rule's request about one reading: what it found, about which reading, taken when."""

    request: AlertRequest
    observation_id: str | None
    taken_at: datetime


@dataclass
class _Repeats:
    """What this transaction saw of a stored unresolved alert, applied after the flush."""

    alert: Alert
    count: int = 0
    latest: _Seen | None = None
    worst: _Seen | None = None  # the first request of the highest severity seen here


@dataclass
class Recorded:
    """What one transaction recorded: the alerts it opened or updated, the events to push."""

    alerts: list[Alert] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class Recorder:
    """Store readings and answers of some patients, triage them and raise their alerts."""

    def __init__(self, session: Session, patient_ids: Iterable[str], now: datetime, *,
                 new_id: Callable[[], str], actor: str = "gateway",
                 actor_user_id: int | None = None) -> None:
        ids = set(patient_ids)
        self.session, self.now, self.new_id = session, now, new_id
        self.actor, self.actor_user_id = actor, actor_user_id
        self.patients = {p.id: p for p in session.exec(
            select(Patient).where(col(Patient.id).in_(ids)))}
        # Only organisations consent lets see the patient hear of the readings.
        self.care_teams = team_organizations(session, ids)
        self.thresholds = {(t.patient_id, t.measurement): t for t in session.exec(
            select(Threshold).where(col(Threshold.patient_id).in_(ids)))}
        self.contexts = BatchContexts(session, ids, now, self.thresholds)
        self.open_alerts = {(a.patient_id, a.rule): a for a in session.exec(
            select(Alert).where(col(Alert.patient_id).in_(ids), col(Alert.status) != "resolved"))}
        self.new_alerts: list[Alert] = []
        self.repeats: dict[int, _Repeats] = {}
        self.pending: list[tuple[str, Any]] = []  # (event type, row) in the order they happened
        self.queued: set[int] = set()  # id() of alerts already queued as events

    def measurement(self, patient_id: str, measurement: Measurement, *, source: str,
                    received_at: datetime, device_id: str | None = None,
                    shape: Shape | None = None) -> list[Observation]:
        """Store one measurement object's Observations and run the rules on its readings.

        `source` is the ledger's sender (the device id, or a door's own name); a device
        (`device_id`) also gets the device rules, and its old readings are marked late.
        """
        self.session.add(InboundMessage(device_id=source, msg_id=measurement.msg_id,
                                        patient_id=patient_id, received_at=received_at,
                                        taken_at=measurement.taken_at))
        triage, _ = triage_readings(measurement.readings,
                                    lambda code: self.thresholds.get((patient_id, code)))
        mapped = observations_for(measurement, patient_id=patient_id,
                                  device_id=device_id or source, issued=self.now, triage=triage)
        stored: dict[str, Observation] = {}
        for type_code, resource in mapped:
            if shape is not None:
                shape(resource)
            row = observation_row(self.new_id(), patient_id, source, measurement.msg_id,
                                  type_code, measurement.taken_at, self.now, resource)
            self.session.add(row)
            self.pending.append(("observation", row))
            stored[type_code] = row
        late = device_id is not None and self._late(patient_id, measurement.taken_at,
                                                    received_at)
        readings = [rules.Reading(r.code, r.value, r.unit, measurement.taken_at, received_at,
                                  late, device_id)
                    for r in measurement.readings if r.code in READING_CODES]
        self._evaluate(patient_id, readings, device_id is not None,
                       lambda code: _id(stored.get(type_for_reading(code).code)))
        return list(stored.values())

    def answers(self, patient_id: str, answers: QuestionnaireAnswers, *, received_at: datetime,
                device_id: str | None = None, source: str | None = None,
                author: dict[str, str] | None = None) -> Observation:
        """Store a questionnaire response and its score; run the rules on what it reports."""
        row = record_response(self.session, answers, patient_id=patient_id, device_id=device_id,
                              received_at=received_at, now=self.now, new_id=self.new_id,
                              source=source, author=author)
        self.pending.append(("observation", row))
        late = device_id is not None and self._late(patient_id, answers.taken_at, received_at)
        readings = [dataclasses.replace(r, late=late) for r in answer_readings(
            answers, int(row.value or 0), received_at, device_id)]
        self._evaluate(patient_id, readings, device_id is not None, lambda _code: row.id)
        return row

    def finish(self) -> Recorded:
        """Write the alerts (after the Observations they name) and render the live events."""
        self.session.flush()
        updated = self._apply_repeats()
        self.session.add_all(self.new_alerts)
        self.session.flush()
        for alert, action in [*((a, "created") for a in self.new_alerts),
                              *((a, "updated") for a in updated)]:
            inbox.after_change(self.session, alert, action, self.actor, self.now,
                               self.actor_user_id)
        return Recorded([*self.new_alerts, *updated], self._events())

    def _late(self, patient_id: str, taken_at: datetime, received_at: datetime) -> bool:
        """Return whether a reading came from a buffer: taken longer ago than the limit."""
        limit = self.contexts.parameters[patient_id].late_after_minutes.value
        return received_at - taken_at > timedelta(minutes=limit)

    def _evaluate(self, patient_id: str, readings: Sequence[rules.Reading], device: bool,
                  observation_for: Callable[[str], str | None]) -> None:
        """Run the rules on one message's readings; one request per rule, the worst."""
        self.contexts.add(patient_id, readings)  # readings of one session see each other
        ctx = self.contexts.context(patient_id)
        chosen: dict[str, _Seen] = {}
        for reading in readings:
            for request in rules.evaluate(reading, ctx):
                if (request.rule.startswith("device:") and not device) or restates_limits(
                        request, ctx):
                    continue  # device rules judge devices, not a person's report
                current = chosen.get(request.rule)
                if current is None or rank(request.severity) >= rank(current.request.severity):
                    chosen[request.rule] = _Seen(request, observation_for(reading.code),
                                                 reading.taken_at)
        for seen in chosen.values():
            self._raise(patient_id, seen)

    def _raise(self, patient_id: str, seen: _Seen) -> None:
        """Open an alert, or count a repeat of the unresolved one of the same rule."""
        alert = self.open_alerts.get((patient_id, seen.request.rule))
        if alert is None:
            alert = alert_row(patient_id, seen.observation_id, seen.request, self.now,
                              seen.taken_at)
            self.new_alerts.append(alert)
            self.open_alerts[(patient_id, seen.request.rule)] = alert
        elif alert.id is None:  # opened earlier in this transaction, not stored yet
            alert.count += 1
            _latest(alert, seen)
            if rank(seen.request.severity) > rank(alert.severity):
                _deciding(alert, seen)
        else:
            found = self.repeats.setdefault(alert.id, _Repeats(alert))
            found.count += 1
            found.latest = seen
            if found.worst is None or rank(seen.request.severity) > rank(
                    found.worst.request.severity):
                found.worst = seen
        if id(alert) not in self.queued:
            self.queued.add(id(alert))
            self.pending.append(("alert", alert))

    def _apply_repeats(self) -> list[Alert]:
        """Update stored alerts in SQL (count + n), safe against another process doing so."""
        updated = []
        for alert_id, change in self.repeats.items():
            assert change.latest is not None and change.worst is not None
            latest = change.latest
            done = self.session.execute(
                update(Alert).where(col(Alert.id) == alert_id, col(Alert.status) != "resolved")
                .values(count=col(Alert.count) + change.count,
                        reason=latest.request.reason[:500], details=latest.request.details,
                        last_observation_id=latest.observation_id, last_at=latest.taken_at,
                        updated_at=self.now)
                .execution_options(synchronize_session=False))
            if getattr(done, "rowcount", 1) == 0:  # resolved meanwhile: open a new one
                fresh = alert_row(change.alert.patient_id, change.worst.observation_id,
                                  change.worst.request, self.now, change.worst.taken_at)
                fresh.count = change.count
                _latest(fresh, latest)
                self.new_alerts.append(fresh)
                self.pending = [(k, fresh if r is change.alert else r) for k, r in self.pending]
                continue
            worst = change.worst
            self.session.execute(  # only a worse severity moves "why it is this colour"
                update(Alert).where(col(Alert.id) == alert_id,
                                    col(Alert.severity).in_(lower_than(worst.request.severity)))
                .values(severity=worst.request.severity,
                        severity_reason=worst.request.reason[:500],
                        severity_details=worst.request.details,
                        severity_observation_id=worst.observation_id,
                        severity_at=worst.taken_at)
                .execution_options(synchronize_session=False))
            self.session.refresh(change.alert)
            updated.append(change.alert)
        return updated

    def _events(self) -> list[dict[str, Any]]:
        rendered = []
        for kind, row in self.pending:
            patient = self.patients[row.patient_id]
            rooms = events.rooms_for(patient.id, self.care_teams.get(patient.id, []))
            data = (alert_lifecycle.alert_view(self.session, row, patient) if kind == "alert"
                    else events.observation_payload(row, patient))
            rendered.append({"type": kind, "rooms": rooms, "data": data})
        return rendered


def _id(row: Observation | None) -> str | None:
    return row.id if row is not None else None


def _latest(alert: Alert, seen: _Seen) -> None:
    alert.reason, alert.details = seen.request.reason[:500], seen.request.details
    alert.last_observation_id, alert.last_at = seen.observation_id, seen.taken_at


def _deciding(alert: Alert, seen: _Seen) -> None:
    alert.severity = seen.request.severity
    alert.severity_reason = seen.request.reason[:500]
    alert.severity_details = seen.request.details
    alert.severity_observation_id, alert.severity_at = seen.observation_id, seen.taken_at
