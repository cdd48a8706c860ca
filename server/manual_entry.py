"""Store what a patient reported by telephone, on paper or in person (the non-digital route).

A clinician enters it; the stored Observation is rebuilt with the same mapping and
triage as device data, the same alert rules run on it (`raise_rule_alerts`) and a
Provenance records who entered it and how it was obtained. The doors publish
`live_events` after the commit. `POST /fhir/Observation` arrives at `enter_reading`;
the JSON door and the pages reach `store_measurement` through server/phone_entry.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlmodel import Session, select
from telekol.device_gateway.payload import Measurement
from telekol.device_gateway.readings import parse_readings
from telekol.device_gateway.timestamps import fhir_datetime_text, parse_taken_at
from telekol.fhir.codes import (
    OBSERVATION_KEY_SYSTEM,
    READING_CODES,
    MeasurementType,
    type_for_coding,
)
from telekol.fhir.observation import observations_for
from telekol.fhir.practitioner import reference
from telekol.fhir.provenance import entry_provenance
from telekol.fhir.validation import InvalidResource, validate_resource
from telekol.server import alert_lifecycle, events, rules
from telekol.server.access import ACTIONS, may, team_organizations, visible_patient
from telekol.server.alert_store import raise_alerts, rank, restates_limits
from telekol.server.db import utcnow
from telekol.server.fhir_resources import instant
from telekol.server.fhir_search import (
    MANUAL_DEVICE,
    SearchError,
    client_identifier_key,
    observation_filter,
    reference_id,
)
from telekol.server.models import (
    Alert,
    InboundMessage,
    Observation,
    Patient,
    StoredResource,
    Threshold,
    User,
)
from telekol.server.observation_rows import observation_row, triage_readings
from telekol.server.rule_context import BatchContexts
from telekol.server.triage import AlertRequest


class EntryRefused(PermissionError):
    """The user may not enter readings (the door answers 403)."""


class SubjectNotFound(LookupError):
    """The subject does not exist or the user may not see it (the door answers 404)."""


class InvalidEntry(ValueError):
    """The Observation cannot be stored as a reading (the door answers 422)."""


class DuplicateEntry(ValueError):
    """A reading with the same identifier is already stored (the door answers 409)."""


def check_writer(user: User) -> None:
    """Refuse users whose role may never enter data for a patient (before any patient is known)."""
    roles, _ = ACTIONS["enter_data"]
    if user.role not in roles or user.organization_id is None:
        raise EntryRefused(f"a {user.role} account may not enter readings")


def check_may_enter(session: Session, user: User, patient_id: str) -> None:
    """Raise SubjectNotFound if `user` may not see the patient, EntryRefused if not enter."""
    if visible_patient(session, user, patient_id) is None:
        raise SubjectNotFound(f"Patient/{patient_id} is not known")
    if not may(session, user, "enter_data", patient_id):
        raise EntryRefused(f"a {user.role} account may not enter data for this patient")


@dataclass(frozen=True)
class Stored:
    """An entered Observation just stored (not committed) and the alerts it raised or updated."""

    row: Observation
    alerts: list[Alert]


def enter_reading(session: Session, user: User, body: Any, *, now: datetime | None = None,
                  new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Store a posted Observation with its triage, alerts and Provenance.

    Return the stored resource and the live events announcing it (publish them).
    """
    now = now or utcnow()
    patient_id, _, measurement, identifiers = parse_reported(session, user, body, now)
    check_may_enter(session, user, patient_id)  # 404 if not visible, 403 if not allowed
    check_writer(user)  # a patient may enter data, but through their own pages
    if existing_entry(session, measurement.msg_id) is not None:
        raise DuplicateEntry("an Observation with this identifier is already stored")
    stored = store_measurement(session, user, patient_id, measurement, method="telephone",
                               identifiers=identifiers, now=now, new_id=new_id)
    announced = live_events(session, patient_id, [stored.row], stored.alerts)
    session.commit()
    return json.loads(stored.row.resource), announced


def store_measurement(session: Session, user: User, patient_id: str, measurement: Measurement,
                      *, method: str, now: datetime, new_id: Callable[[], str],
                      identifiers: Sequence[dict[str, str]] = (), note: str | None = None,
                      ) -> Stored:
    """Add a reported measurement's Observation, ledger row, alerts and Provenance."""
    contexts, limits = load_rule_context(session, patient_id, now)  # before the new row
    triage, _ = triage_readings(measurement.readings, limits.get)
    [(type_code, resource)] = observations_for(measurement, patient_id=patient_id,
                                               device_id=MANUAL_DEVICE, issued=now, triage=triage)
    resource.pop("device")
    resource["identifier"] += identifiers
    performer = reference("Practitioner", str(user.id), user.display_name)
    resource["performer"] = [performer, reference("Organization", user.organization_id or "")]
    if note:
        resource["note"] = [{"authorReference": performer, "time": instant(now), "text": note}]
    row = observation_row(new_id(), patient_id, MANUAL_DEVICE, measurement.msg_id, type_code,
                          measurement.taken_at, now, resource)
    session.add(InboundMessage(device_id=MANUAL_DEVICE, msg_id=measurement.msg_id,
                               patient_id=patient_id, received_at=now,
                               taken_at=measurement.taken_at))
    session.add(row)
    session.flush()
    readings = [rules.Reading(r.code, r.value, r.unit, measurement.taken_at, now)
                for r in measurement.readings if r.code in READING_CODES]
    alerts = raise_rule_alerts(session, contexts, patient_id, readings, row.id, now, user.id)
    session.add(provenance_row(user, patient_id, [f"Observation/{row.id}"], method=method,
                               now=now, provenance_id=new_id()))
    return Stored(row, alerts)


def load_rule_context(session: Session, patient_id: str, now: datetime,
                      ) -> tuple[BatchContexts, dict[str, Threshold]]:
    """Load the patient's limits and recent readings as the ingest batch does."""
    limits = {t.measurement: t for t in session.exec(
        select(Threshold).where(Threshold.patient_id == patient_id))}
    contexts = BatchContexts(session, [patient_id], now,
                             {(patient_id, code): row for code, row in limits.items()})
    return contexts, limits


def raise_rule_alerts(session: Session, contexts: BatchContexts, patient_id: str,
                      readings: Sequence[rules.Reading], observation_id: str, now: datetime,
                      actor_user_id: int | None) -> list[Alert]:
    """Run the device readings' rules on entered readings; open or update their alerts.

    As in the ingest batch: one request per rule (the worst), NEWS2 single-parameter
    triggers the care plan's limits already judge are dropped. Device rules (clock,
    battery) do not apply to a reading a person reported.
    """
    contexts.add(patient_id, readings)
    ctx = contexts.context(patient_id)
    chosen: dict[str, AlertRequest] = {}
    for reading in readings:
        for request in rules.evaluate(reading, ctx):
            if request.rule.startswith("device:") or restates_limits(request, ctx):
                continue
            current = chosen.get(request.rule)
            if current is None or rank(request.severity) >= rank(current.severity):
                chosen[request.rule] = request
    return raise_alerts(session, patient_id, observation_id, list(chosen.values()), now,
                        actor_user_id=actor_user_id)


def existing_entry(session: Session, msg_id: str) -> Observation | None:
    """Return the entered Observation stored under `msg_id`, if any (readings and scores)."""
    return session.exec(select(Observation).where(
        Observation.device_id == MANUAL_DEVICE, Observation.msg_id == msg_id)).first()


def live_events(session: Session, patient_id: str, rows: Sequence[Observation],
                alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """Return the `observation` and `alert` events of an entry, as the gateway sends them."""
    patient = session.get(Patient, patient_id)
    assert patient is not None
    rooms = events.rooms_for(patient_id, team_organizations(session, [patient_id]).get(
        patient_id, []))
    found = [{"type": "observation", "rooms": rooms,
              "data": events.observation_payload(row, patient)} for row in rows]
    return found + [{"type": "alert", "rooms": rooms,
                     "data": alert_lifecycle.alert_view(session, alert, patient)}
                    for alert in alerts]


def parse_reported(session: Session, user: User, body: Any, now: datetime,
                   ) -> tuple[str, MeasurementType, Measurement, list[dict[str, str]]]:
    """Check a posted Observation; return patient id, type, measurement and client identifiers."""
    if not isinstance(body, dict) or body.get("resourceType") != "Observation":
        raise InvalidEntry("the body must be an Observation resource")
    try:
        validate_resource(body)
    except InvalidResource as error:
        raise InvalidEntry(f"the Observation is not valid FHIR R4: {error}") from None
    if body.get("status") != "final":
        raise InvalidEntry("status must be final: only finished readings are stored")
    patient_id = _subject(session, user, body)
    mtype = _measurement_type(body)
    errors: list[str] = []
    readings = parse_readings(_reading_items(body, mtype), errors)
    taken_at = parse_taken_at(body.get("effectiveDateTime"), now, errors)
    identifiers = [{"system": i["system"], "value": i["value"]} for i in body.get("identifier", [])
                   if i.get("system") != OBSERVATION_KEY_SYSTEM]
    if any(set(i) != {"system", "value"} for i in body.get("identifier", [])):
        errors.append("each identifier needs exactly a system and a value")
    if len(identifiers) > 1:
        errors.append("send at most one identifier of your own system")
    if errors or taken_at is None:
        raise InvalidEntry("; ".join(errors))
    msg_id = (client_identifier_key(**identifiers[0]) if identifiers else new_msg_id())
    text = fhir_datetime_text(str(body["effectiveDateTime"]), taken_at)
    measurement = Measurement(msg_id, taken_at, text, readings, device=None, raw="")
    return patient_id, mtype, measurement, identifiers


def existing_matches(session: Session, user: User, criteria: str) -> list[Observation]:
    """Return (at most two) visible Observations matching an If-None-Exist search."""
    params = parse_qs(criteria.lstrip("?"), keep_blank_values=True)
    if not params:
        raise SearchError("If-None-Exist must hold search parameters, e.g. identifier=system|value")
    return list(session.exec(observation_filter(user, params).limit(2)).all())


def new_msg_id() -> str:
    """Return a fresh message id for a reading sent without an identifier."""
    return "tel-" + uuid.uuid4().hex


def _subject(session: Session, user: User, body: dict[str, Any]) -> str:
    raw = (body.get("subject") or {}).get("reference")
    if not raw:
        raise InvalidEntry("subject must reference the Patient (Patient/{id})")
    try:
        patient_id = reference_id(raw, "Patient")
    except SearchError as error:
        raise InvalidEntry(str(error)) from None
    if visible_patient(session, user, patient_id) is None:
        raise SubjectNotFound(f"Patient/{patient_id} is not known")
    return patient_id


def _measurement_type(body: dict[str, Any]) -> MeasurementType:
    for coding in body["code"].get("coding", []):
        found = type_for_coding(coding.get("system"), str(coding.get("code")))
        if found is not None and coding.get("system"):
            return found
    raise InvalidEntry("code has no LOINC or MDC coding of a measurement TeleKOL records")


def _reading_items(body: dict[str, Any], mtype: MeasurementType) -> list[dict[str, Any]]:
    if not mtype.components:
        return [_item(mtype.code, body.get("valueQuantity"), "valueQuantity")]
    items = []
    for index, component in enumerate(body.get("component", [])):
        codes = {(c.get("system"), c.get("code")) for c in component["code"].get("coding", [])}
        known = next((part for part in mtype.components
                      if codes & {(coding.system, coding.code) for coding in part.codings}), None)
        if known is None:
            raise InvalidEntry(f"component[{index}] has no code of a {mtype.display_en} part")
        items.append(_item(known.reading_code, component.get("valueQuantity"),
                           f"component[{index}].valueQuantity"))
    return items


def _item(code: str, quantity: dict[str, Any] | None, where: str) -> dict[str, Any]:
    if not quantity or "value" not in quantity:
        raise InvalidEntry(f"{where} with a value and a UCUM unit is required")
    unit = quantity.get("code") or quantity.get("unit")
    if unit is None:
        raise InvalidEntry(f"{where} needs a unit (code in http://unitsofmeasure.org)")
    return {"code": code, "value": float(quantity["value"]), "unit": unit}


def provenance_row(user: User, patient_id: str, targets: Sequence[str], *, method: str,
                   now: datetime, provenance_id: str, what: str = "Reading") -> StoredResource:
    """Return the stored Provenance of data `user` entered for the patient."""
    resource = entry_provenance(
        provenance_id=provenance_id, targets=targets, patient_id=patient_id,
        practitioner=reference("Practitioner", str(user.id), user.display_name),
        organization_id=user.organization_id, recorded=instant(now), method=method, what=what)
    resource["meta"] = {"versionId": "1", "lastUpdated": instant(now)}
    return StoredResource(id=provenance_id, resource_type="Provenance",
                          patient_id=patient_id, effective=now, version_id=1,
                          last_updated=now, resource=json.dumps(
                              resource, separators=(",", ":"), ensure_ascii=False))
