"""Enter a reading or questionnaire a patient gave by telephone, on paper or in person.

The service behind `POST /api/patients/<id>/readings`, `.../questionnaire-responses` and
the phone-entry page. The small JSON bodies are turned into the gateway's own items and
checked by its parsers (device_gateway), and stored through the same Recorder as device
data (server/ingest/recorder.py: mapping, triage, alert rules, live events) with a Provenance.
A client key (`Idempotency-Key`, the form's `entry_id`) makes an entry exactly-once: the
same key again returns the first entry and stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.practitioner import reference
from telekol.fhir.provenance import ENTRY_METHODS
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server import events
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.db import utcnow
from telekol.server.device_messages.measurements import Measurement
from telekol.server.device_messages.questionnaire_responses import (
    QuestionnaireAnswers,
    Rejection,
    parse_questionnaire_responses,
)
from telekol.server.device_messages.readings import parse_readings
from telekol.server.device_messages.timestamps import fhir_datetime_text, parse_taken_at
from telekol.server.fhir_store.search import MANUAL_DEVICE
from telekol.server.ingest.manual_entry import (
    DuplicateEntry,
    InvalidEntry,
    check_may_enter,
    check_writer,
    existing_entry,
    store_measurement,
)
from telekol.server.ingest.provenance import provenance_row
from telekol.server.ingest.recorder import Recorder
from telekol.server.models import Alert, Observation, Patient, User

MAX_NOTE = 500
MAX_KEY = 200
READING_FIELDS = {"type", "value", "unit", "taken_at", "method", "note", "entry_id"}
ANSWER_FIELDS = {"questionnaire", "answers", "method", "authored", "entry_id"}
SCORE_KINDS = {q.type_code: q.kind for q in QUESTIONNAIRES.values()}


class InvalidReport(InvalidEntry):
    """An entry that cannot be stored; `errors` lists every reason (the door answers 422)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Entry:
    """What an entry stored, or had stored before under the same key (`created` False)."""

    kind: str  # "reading", or the questionnaire ("cat", "copd-symptoms")
    observation: Observation  # the reading, or the questionnaire's score
    alerts: list[dict[str, Any]]  # alert payloads, as /api/alerts shows them
    events: list[dict[str, Any]]  # live events to publish after the commit
    created: bool

    @property
    def resource(self) -> dict[str, Any]:
        """Return the stored Observation as FHIR JSON."""
        return json.loads(self.observation.resource)

    @property
    def response_id(self) -> str | None:
        """Return the QuestionnaireResponse id a score was derived from."""
        derived = self.resource.get("derivedFrom") or [{}]
        return derived[0].get("reference", "").removeprefix("QuestionnaireResponse/") or None


def report_reading(session: Session, user: User, patient_id: str, body: Any, *,
                   key: str | None = None, now: datetime | None = None,
                   new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Entry:
    """Store a reading the patient reported (JSON {type, value, unit, taken_at, method})."""
    now = now or utcnow()
    msg_id = _check(session, user, patient_id, key)
    found = existing_entry(session, msg_id)
    if found is not None:
        return _replay(session, found, patient_id, questionnaire=False)
    measurement, method, note = parse_reading(body, msg_id, now)
    try:
        stored = store_measurement(session, user, patient_id, measurement, method=method,
                                   note=note, now=now, new_id=new_id)
        return _commit(session, patient_id, "reading", stored.row, stored.alerts, stored.events)
    except IntegrityError as conflict:
        return _raced(session, conflict, msg_id, patient_id, questionnaire=False)


def report_answers(session: Session, user: User, patient_id: str, body: Any, *,
                   key: str | None = None, now: datetime | None = None,
                   new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Entry:
    """Store questionnaire answers the patient gave (JSON {questionnaire, answers, method})."""
    now = now or utcnow()
    msg_id = _check(session, user, patient_id, key)
    found = existing_entry(session, msg_id)
    if found is not None:
        return _replay(session, found, patient_id, questionnaire=True)
    answers, method = parse_answers(body, msg_id, now)
    try:
        recorder = Recorder(session, [patient_id], now, new_id=new_id, actor="user",
                            actor_user_id=user.id)
        row = recorder.answers(patient_id, answers, received_at=now, source=MANUAL_DEVICE,
                               author=reference("Practitioner", str(user.id), user.display_name))
        recorded = recorder.finish()
        session.add(provenance_row(user, patient_id, [*_derived(row), f"Observation/{row.id}"],
                                   method=method, now=now, provenance_id=new_id(),
                                   what="Answers"))
        return _commit(session, patient_id, answers.questionnaire, row, recorded.alerts,
                       recorded.events)
    except IntegrityError as conflict:
        return _raced(session, conflict, msg_id, patient_id, questionnaire=True)


def _derived(row: Observation) -> list[str]:
    """Return the QuestionnaireResponse a score Observation was derived from."""
    return [d["reference"] for d in json.loads(row.resource).get("derivedFrom", [])]


def parse_reading(body: Any, msg_id: str, now: datetime) -> tuple[Measurement, str, str | None]:
    """Check a reported reading with the gateway's rules; return it, the method and note."""
    errors: list[str] = []
    fields = _fields(body, READING_FIELDS, errors)
    method, note = _method(fields, errors), _note(fields, errors)
    kind = fields.get("type")
    items: list[dict[str, Any]] = []
    if kind not in MEASUREMENT_TYPES:
        errors.append(f"type must be one of: {', '.join(MEASUREMENT_TYPES)}")
    else:
        items = _items(str(kind), fields.get("value"), fields.get("unit"), errors)
    found: list[str] = []
    readings = parse_readings(items, found) if items else ()
    errors += [_field_names(error, kind == "bp") for error in found]
    taken_at = parse_taken_at(fields.get("taken_at"), now, errors)
    if errors or taken_at is None:
        raise InvalidReport(errors)
    text = fhir_datetime_text(str(fields["taken_at"]), taken_at)
    return Measurement(msg_id, taken_at, text, readings, device=None, raw=""), method, note


def parse_answers(body: Any, msg_id: str, now: datetime) -> tuple[QuestionnaireAnswers, str]:
    """Check reported answers with the gateway's questionnaire parser; return them and method."""
    errors: list[str] = []
    fields = _fields(body, ANSWER_FIELDS, errors)
    method = _method(fields, errors)
    item: dict[str, Any] = {"msg_id": msg_id,
                            "taken_at": fields.get("authored", events.instant(now))}
    item.update({k: fields[k] for k in ("questionnaire", "answers") if k in fields})
    [parsed] = parse_questionnaire_responses(json.dumps(item).encode(), now)
    if isinstance(parsed, Rejection):
        errors += [error.replace("taken_at", "authored") for error in parsed.errors]
    if errors or not isinstance(parsed, QuestionnaireAnswers):
        raise InvalidReport(errors)
    return parsed, method


def entry_msg_id(user: User, key: str | None) -> str:
    """Return the ledger id of an entry: the user's key hashed (keys are per user), or new."""
    if key is None:
        return "ph-" + uuid.uuid4().hex
    if not key.strip() or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidReport([f"the idempotency key must be 1 to {MAX_KEY} printable characters"])
    return "k-" + hashlib.sha256(f"{user.id}|{key}".encode()).hexdigest()[:40]


def _check(session: Session, user: User, patient_id: str, key: str | None) -> str:
    check_may_enter(session, user, patient_id)  # 404 if not visible, 403 if not allowed
    check_writer(user)  # patients have their own form
    return entry_msg_id(user, key)


def _commit(session: Session, patient_id: str, kind: str, row: Observation,
            alerts: list[Alert], published: list[dict[str, Any]]) -> Entry:
    patient = session.get(Patient, patient_id)
    assert patient is not None
    shown = [alert_lifecycle.alert_view(session, alert, patient) for alert in alerts]
    session.commit()
    return Entry(kind, row, shown, published, created=True)


def _raced(session: Session, conflict: IntegrityError, msg_id: str, patient_id: str,
           questionnaire: bool) -> Entry:
    # The ledger's key is unique: a parallel request with the same key stored it first.
    session.rollback()
    found = existing_entry(session, msg_id)
    if found is None:
        raise conflict  # another conflict (e.g. an alert opened meanwhile): not ours to hide
    return _replay(session, found, patient_id, questionnaire)


def _replay(session: Session, row: Observation, patient_id: str, questionnaire: bool) -> Entry:
    if row.patient_id != patient_id or (row.type_code in SCORE_KINDS) != questionnaire:
        raise DuplicateEntry("this key was already used for another entry")
    patient = session.get(Patient, patient_id)
    assert patient is not None
    alerts = session.exec(select(Alert).where(
        or_(col(Alert.observation_id) == row.id, col(Alert.last_observation_id) == row.id))
        .order_by(col(Alert.id))).all()
    shown = [alert_lifecycle.alert_view(session, alert, patient) for alert in alerts]
    return Entry(SCORE_KINDS.get(row.type_code, "reading"), row, shown, [], created=False)


def _fields(body: Any, allowed: set[str], errors: list[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        errors.append("the body must be a JSON object")
        return {}
    errors += [f"unknown field {key!r}; allowed: {', '.join(sorted(allowed))}"
               for key in sorted(map(str, body)) if key not in allowed]
    return body


def _method(fields: dict[str, Any], errors: list[str]) -> str:
    method = fields.get("method")
    if method not in ENTRY_METHODS:
        errors.append(f"method must be one of: {', '.join(ENTRY_METHODS)}")
        return ""
    return str(method)


def _note(fields: dict[str, Any], errors: list[str]) -> str | None:
    note = fields.get("note")
    if note is None or note == "":
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        errors.append(f"note must be a text of at most {MAX_NOTE} characters")
        return None
    return note.strip() or None


def _items(kind: str, value: Any, unit: Any, errors: list[str]) -> list[dict[str, Any]]:
    """Return the gateway's reading items for a type (blood pressure: its two components)."""
    extra = {} if unit is None else {"unit": unit}
    if kind != "bp":
        return [{"code": kind, "value": value, **extra}]
    if not isinstance(value, dict) or set(value) != {"systolic", "diastolic"}:
        errors.append('value of a blood pressure must be {"systolic": ..., "diastolic": ...}')
        return []
    return [{"code": "bp_sys", "value": value["systolic"], **extra},
            {"code": "bp_dia", "value": value["diastolic"], **extra}]


def _field_names(error: str, blood_pressure: bool) -> str:
    # The gateway names list positions; say which field of this body was wrong.
    names: tuple[tuple[str, str], ...] = (("readings[0].value", "value"),)
    if blood_pressure:
        names = (("readings[0].value", "value.systolic"), ("readings[1].value", "value.diastolic"))
    for position, name in (*names, ("readings[0].unit", "unit"), ("readings[1].unit", "unit")):
        error = error.replace(position, name)
    return error
