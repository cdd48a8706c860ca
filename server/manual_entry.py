"""Store a reading a patient reported by telephone, entered by a clinician (the non-digital route).

The stored Observation is rebuilt with the same mapping and triage as device data; a
Provenance records who entered it and how it was obtained. Nothing is published live.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlmodel import Session, select
from telekol.device_gateway.payload import Measurement
from telekol.device_gateway.readings import parse_readings
from telekol.device_gateway.timestamps import fhir_datetime_text, parse_taken_at
from telekol.fhir.codes import OBSERVATION_KEY_SYSTEM, MeasurementType, type_for_coding
from telekol.fhir.observation import observations_for
from telekol.fhir.practitioner import CLINICIAN_ROLES, reference
from telekol.fhir.provenance import telephone_entry_provenance
from telekol.fhir.validation import InvalidResource, validate_resource
from telekol.server.access import visible_patient
from telekol.server.alert_store import raise_alerts
from telekol.server.db import utcnow
from telekol.server.fhir_resources import instant
from telekol.server.fhir_search import (
    MANUAL_DEVICE,
    SearchError,
    client_identifier_key,
    observation_filter,
    reference_id,
)
from telekol.server.models import Observation, StoredResource, Threshold, User
from telekol.server.observation_rows import observation_row, triage_readings


class EntryRefused(PermissionError):
    """The user may not enter readings (the door answers 403)."""


class SubjectNotFound(LookupError):
    """The subject does not exist or the user may not see it (the door answers 404)."""


class InvalidEntry(ValueError):
    """The Observation cannot be stored as a reading (the door answers 422)."""


class DuplicateEntry(ValueError):
    """A reading with the same identifier is already stored (the door answers 409)."""


def check_writer(user: User) -> None:
    """Refuse users who are not clinicians of an organisation."""
    if user.role not in CLINICIAN_ROLES or user.organization_id is None:
        raise EntryRefused(f"a {user.role} account may not enter readings")


def enter_reading(session: Session, user: User, body: Any, *, now: datetime | None = None,
                  new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> dict[str, Any]:
    """Store a reported reading with its triage, alerts and Provenance; return the Observation."""
    check_writer(user)
    now = now or utcnow()
    patient_id, mtype, measurement, identifiers = parse_reported(session, user, body, now)
    if session.exec(select(Observation.id).where(
            Observation.device_id == MANUAL_DEVICE, Observation.msg_id == measurement.msg_id,
            Observation.type_code == mtype.code)).first():
        raise DuplicateEntry("an Observation with this identifier is already stored")
    limits = {t.measurement: t for t in session.exec(
        select(Threshold).where(Threshold.patient_id == patient_id))}
    triage, alerts = triage_readings(measurement.readings, limits.get)
    [(type_code, resource)] = observations_for(measurement, patient_id=patient_id,
                                               device_id=MANUAL_DEVICE, issued=now, triage=triage)
    resource.pop("device")
    resource["identifier"] += identifiers
    resource["performer"] = [reference("Practitioner", str(user.id), user.display_name),
                             reference("Organization", user.organization_id or "")]
    row = observation_row(new_id(), patient_id, MANUAL_DEVICE, measurement.msg_id, type_code,
                          measurement.taken_at, now, resource)
    session.add(row)
    session.flush()
    raise_alerts(session, patient_id, row.id,
                 [request for requests in alerts.values() for request in requests], now,
                 actor_user_id=user.id)
    session.add(_provenance(user, row, new_id(), now))
    session.commit()
    return json.loads(row.resource)


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


def _provenance(user: User, row: Observation, provenance_id: str,
                now: datetime) -> StoredResource:
    resource = telephone_entry_provenance(
        provenance_id=provenance_id, observation_id=row.id, patient_id=row.patient_id,
        practitioner=reference("Practitioner", str(user.id), user.display_name),
        organization_id=user.organization_id, recorded=instant(now))
    resource["meta"] = {"versionId": "1", "lastUpdated": instant(now)}
    return StoredResource(id=provenance_id, resource_type="Provenance",
                          patient_id=row.patient_id, effective=now, version_id=1,
                          last_updated=now, resource=json.dumps(
                              resource, separators=(",", ":"), ensure_ascii=False))

