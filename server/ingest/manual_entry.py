"""Store what a patient reported by telephone, on paper or in person (the non-digital route).

A clinician enters it; it goes through the same Recorder as device data
(server/ingest/recorder.py: mapping, triage, alert rules, live events), and a Provenance records
who entered it and how it was obtained. The doors publish the events after the commit.
`POST /fhir/Observation` arrives at `enter_reading`; the JSON door and the pages reach
`store_measurement` through server/ingest/phone_entry.py.
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
from telekol.fhir.codes import (
    OBSERVATION_KEY_SYSTEM,
    MeasurementType,
    type_for_coding,
)
from telekol.fhir.practitioner import reference
from telekol.fhir.validation import InvalidResource, validate_resource
from telekol.server.care.access import ACTIONS, may, visible_patient
from telekol.server.db import utcnow
from telekol.server.device_messages.measurements import Measurement
from telekol.server.device_messages.readings import parse_readings
from telekol.server.device_messages.timestamps import fhir_datetime_text, parse_taken_at
from telekol.server.fhir_store.resources import instant
from telekol.server.fhir_store.search import (
    MANUAL_DEVICE,
    SearchError,
    client_identifier_key,
    observation_filter,
    reference_id,
)
from telekol.server.ingest.provenance import provenance_row
from telekol.server.ingest.recorder import Recorder
from telekol.server.models import (
    Alert,
    Observation,
    User,
)


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
    """An entered Observation just stored (not committed), the alerts it raised or updated
    and the live events to push after the commit."""

    row: Observation
    alerts: list[Alert]
    events: list[dict[str, Any]]


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
    session.commit()
    return json.loads(stored.row.resource), stored.events


def store_measurement(session: Session, user: User, patient_id: str, measurement: Measurement,
                      *, method: str, now: datetime, new_id: Callable[[], str],
                      identifiers: Sequence[dict[str, str]] = (), note: str | None = None,
                      ) -> Stored:
    """Add a reported measurement's Observation, ledger row, alerts and Provenance.

    It goes through the same Recorder as device readings (server/ingest/recorder.py), without
    the device rules: a person reported it.
    """
    performer = reference("Practitioner", str(user.id), user.display_name)

    def shape(resource: dict[str, Any]) -> None:
        resource.pop("device")
        resource["identifier"] += identifiers
        resource["performer"] = [performer, reference("Organization", user.organization_id or "")]
        if note:
            resource["note"] = [{"authorReference": performer, "time": instant(now),
                                 "text": note}]

    recorder = Recorder(session, [patient_id], now, new_id=new_id, actor="user",
                        actor_user_id=user.id)
    [row] = recorder.measurement(patient_id, measurement, source=MANUAL_DEVICE,
                                 received_at=now, shape=shape)
    recorded = recorder.finish()
    session.add(provenance_row(user, patient_id, [f"Observation/{row.id}"], method=method,
                               now=now, provenance_id=new_id()))
    return Stored(row, recorded.alerts, recorded.events)


def existing_entry(session: Session, msg_id: str) -> Observation | None:
    """Return the entered Observation stored under `msg_id`, if any (readings and scores)."""
    return session.exec(select(Observation).where(
        Observation.device_id == MANUAL_DEVICE, Observation.msg_id == msg_id)).first()


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
