"""Record readings and questionnaire answers from every door in the caller's transaction.

The MQTT gateway (server/ingest/batch.py), the patient's web questionnaires
(server/ingest/self_report.py), telephone and paper entry (server/ingest/phone_entry.py) and
`POST /fhir/Observation` (server/ingest/manual_entry.py) all come here, so the same answers raise
the same alert whichever door they came through. A `Recorder` stores the ledger row and
the FHIR Observation (triaged against the patient's limits), runs the alert rules on the
patient's snapshot, opens or updates alerts (one unresolved alert per patient and rule), and
renders the live events the door publishes after its commit.

Rows are collected as plain values and written by `finish` with one bulk INSERT per table
(SQLAlchemy Core, no unit of work): a batch of a thousand readings is a handful of
statements. The rules run on inputs the caller may keep between transactions
(`contexts`, the gateway's cache) or that are loaded here (the web doors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session
from telekol.fhir.codes import READING_CODES, type_for_reading
from telekol.fhir.observation import observations_for
from telekol.server import events
from telekol.server.alerts import context_versions, inbox, rules
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.alerts.book import AlertBook, Seen
from telekol.server.alerts.rule_context import (
    BatchContexts,
    StoredAnswers,
    StoredReading,
    diary_readings,
    readings_of,
)
from telekol.server.alerts.store import rank, restates_limits
from telekol.server.device_messages.measurements import Measurement
from telekol.server.device_messages.questionnaire_responses import QuestionnaireAnswers
from telekol.server.ingest.observation_rows import (
    observation_resource,
    observation_values,
    triage_readings,
)
from telekol.server.ingest.questionnaires import answer_readings, response_rows
from telekol.server.models import Alert, InboundMessage, Observation, StoredResource

Shape = Callable[[dict[str, Any]], None]  # a door's additions to a mapped Observation
_LEDGER = InboundMessage.__table__  # type: ignore[attr-defined]
_OBSERVATIONS = Observation.__table__  # type: ignore[attr-defined]
_RESOURCES = StoredResource.__table__  # type: ignore[attr-defined]


@dataclass
class Recorded:
    """What one transaction recorded: the alerts it opened or updated, the events to push,
    and for a kept context the readings as stored and the patients' new `readings` numbers."""

    alerts: list[Alert] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[rules.Reading]] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)


class Recorder:
    """Store readings and answers of some patients, triage them and raise their alerts."""

    def __init__(self, session: Session, patient_ids: Iterable[str], now: datetime, *,
                 new_id: Callable[[], str], actor: str = "gateway",
                 actor_user_id: int | None = None, contexts: BatchContexts | None = None,
                 ledger: bool = True) -> None:
        """`contexts`: the patients' rule inputs when the caller keeps them (else loaded);
        `ledger=False`: the caller has written the idempotency ledger rows itself."""
        self.session, self.now, self.new_id = session, now, new_id
        self.actor, self.actor_user_id = actor, actor_user_id
        self.contexts = contexts or BatchContexts.load(session, patient_ids, now)
        self.patients = {pid: found.patient for pid, found in self.contexts.inputs.items()}
        self.ledger = ledger
        self.rows: dict[Any, list[dict[str, Any]]] = {_LEDGER: [], _OBSERVATIONS: [],
                                                      _RESOURCES: []}
        self.history: dict[str, list[rules.Reading]] = {}
        # ("observation", (values, resource)) and ("request", (patient, Seen)) in order
        self.pending: list[tuple[str, Any]] = []
        self.book = AlertBook(session, now)

    def measurement(self, patient_id: str, measurement: Measurement, *, source: str,
                    received_at: datetime, device_id: str | None = None,
                    shape: Shape | None = None) -> list[Observation]:
        """Store one measurement object's Observations and run the rules on its readings.

        `source` is the ledger's sender (the device id, or a door's own name); a device
        (`device_id`) also gets the device rules, and its old readings are marked late.
        A door's `shape` changes the mapped resource; the result is validated.
        """
        stored = self._measurement(patient_id, measurement, source, received_at, device_id,
                                   shape)
        return [Observation(**values) for values in stored.values()]

    def add_measurement(self, patient_id: str, measurement: Measurement, *, source: str,
                        received_at: datetime, device_id: str | None = None) -> None:
        """As `measurement`, without handing rows back (the gateway's hot path)."""
        self._measurement(patient_id, measurement, source, received_at, device_id, None)

    def answers(self, patient_id: str, answers: QuestionnaireAnswers, *, received_at: datetime,
                device_id: str | None = None, source: str | None = None,
                author: dict[str, str] | None = None) -> Observation:
        """Store a questionnaire response and its score; run the rules on what it reports."""
        rows = response_rows(answers, patient_id=patient_id, device_id=device_id,
                             received_at=received_at, now=self.now, new_id=self.new_id,
                             source=source, author=author)
        if self.ledger:
            self.rows[_LEDGER].append(rows.ledger)
        self.rows[_RESOURCES].append(rows.response)
        self.rows[_OBSERVATIONS].append(rows.score)
        self.pending.append(("observation", (rows.score, rows.resources[1])))
        self._keep(patient_id, readings_of(_stored(rows.score, None)))
        self._keep(patient_id, diary_readings(StoredAnswers(
            patient_id, answers.taken_at, self.now, rows.resources[0])))
        late = device_id is not None and self._late(patient_id, answers.taken_at, received_at)
        readings = [dataclasses.replace(r, late=late) for r in answer_readings(
            answers, int(rows.score["value"] or 0), received_at, device_id)]
        self._evaluate(patient_id, readings, device_id is not None,
                       lambda _code: rows.score["id"])
        return Observation(**rows.score)

    def finish(self) -> Recorded:
        """Write the rows (Observations before the alerts naming them) and the alerts;
        render the live events."""
        for table, rows in self.rows.items():
            if rows:
                self.session.execute(insert(table), rows)
        counted = context_versions.count_readings(self.session, self.history)
        self.book.load(item[0] for kind, item in self.pending if kind == "request")
        order = self._resolve()
        updated = self.book.apply_repeats()
        self.session.add_all(self.book.new)
        self.session.flush()
        for alert, action in [*((a, "created") for a in self.book.new),
                              *((a, "updated") for a in updated)]:
            inbox.after_change(self.session, alert, action, self.actor, self.now,
                               self.actor_user_id)
        return Recorded([*self.book.new, *updated], self._events(order), self.history, counted)

    def _measurement(self, patient_id: str, measurement: Measurement, source: str,
                     received_at: datetime, device_id: str | None,
                     shape: Shape | None) -> dict[str, dict[str, Any]]:
        inputs = self.contexts.inputs[patient_id]
        if self.ledger:
            self.rows[_LEDGER].append({
                "device_id": source, "msg_id": measurement.msg_id, "patient_id": patient_id,
                "received_at": received_at, "taken_at": measurement.taken_at})
        triage, _ = triage_readings(measurement.readings, inputs.thresholds.get)
        mapped = observations_for(measurement, patient_id=patient_id,
                                  device_id=device_id or source, issued=self.now, triage=triage)
        stored: dict[str, dict[str, Any]] = {}
        for type_code, mapped_resource in mapped:
            if shape is not None:
                shape(mapped_resource)
            resource = observation_resource(self.new_id(), type_code, self.now, mapped_resource)
            values = observation_values(patient_id, source, measurement.msg_id, type_code,
                                        measurement.taken_at, self.now, resource,
                                        validate=shape is not None)
            self.rows[_OBSERVATIONS].append(values)
            self.pending.append(("observation", (values, resource)))
            self._keep(patient_id, readings_of(_stored(values, resource)))
            stored[type_code] = values
        late = device_id is not None and self._late(patient_id, measurement.taken_at,
                                                    received_at)
        readings = [rules.Reading(r.code, r.value, r.unit, measurement.taken_at, received_at,
                                  late, device_id)
                    for r in measurement.readings if r.code in READING_CODES]
        self._evaluate(patient_id, readings, device_id is not None,
                       lambda code: _id(stored.get(type_for_reading(code).code)))
        return stored

    def _keep(self, patient_id: str, readings: list[rules.Reading]) -> None:
        """Note readings as a fresh load would read them back (for a kept context)."""
        self.history.setdefault(patient_id, []).extend(readings)

    def _late(self, patient_id: str, taken_at: datetime, received_at: datetime) -> bool:
        """Return whether a reading came from a buffer: taken longer ago than the limit."""
        limit = self.contexts.inputs[patient_id].parameters.late_after_minutes.value
        return received_at - taken_at > timedelta(minutes=limit)

    def _evaluate(self, patient_id: str, readings: Sequence[rules.Reading], device: bool,
                  observation_for: Callable[[str], str | None]) -> None:
        """Run the rules on one message's readings; one request per rule, the worst."""
        self.contexts.add(patient_id, readings)  # readings of one session see each other
        ctx = self.contexts.context(patient_id)
        chosen: dict[str, Seen] = {}
        for reading in readings:
            for request in rules.evaluate(reading, ctx):
                if (request.rule.startswith("device:") and not device) or restates_limits(
                        request, ctx):
                    continue  # device rules judge devices, not a person's report
                current = chosen.get(request.rule)
                if current is None or rank(request.severity) >= rank(current.request.severity):
                    chosen[request.rule] = Seen(request, observation_for(reading.code),
                                                reading.taken_at)
        self.pending += [("request", (patient_id, seen)) for seen in chosen.values()]

    def _resolve(self) -> list[tuple[str, Any]]:
        """Turn requests into alerts, each queued as an event where it was first raised."""
        order: list[tuple[str, Any]] = []
        queued: set[int] = set()
        for kind, item in self.pending:
            if kind == "observation":
                order.append((kind, item))
                continue
            alert = self.book.raise_(*item)
            if id(alert) not in queued:
                queued.add(id(alert))
                order.append(("alert", alert))
        return order

    def _events(self, order: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        rendered = []
        for kind, item in order:
            if kind == "alert":
                alert = self.book.replaced.get(id(item), item)
                patient_id = alert.patient_id
            else:
                values, resource = item
                patient_id = values["patient_id"]
            patient = self.patients[patient_id]
            rooms = events.rooms_for(patient_id, self.contexts.inputs[patient_id].team)
            data = (alert_lifecycle.alert_view(self.session, alert, patient) if kind == "alert"
                    else events.observation_view(values, resource, patient))
            rendered.append({"type": kind, "rooms": rooms, "data": data})
        return rendered


def _stored(values: dict[str, Any], resource: dict[str, Any] | None) -> StoredReading:
    return StoredReading(values["patient_id"], values["type_code"], values["value"],
                         values["effective"], values["issued"], values["device_id"],
                         resource if values["type_code"] == "bp" else None)


def _id(values: dict[str, Any] | None) -> str | None:
    return values["id"] if values is not None else None
