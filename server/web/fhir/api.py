"""The FHIR REST door at /fhir: reads, searches and $everything; writes are in fhir_write.

Importing it registers every resource family on the one `/fhir` blueprint.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request
from sqlmodel import col, select
from telekol.server.care.access import visible_patient
from telekol.server.fhir_store import directory
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.paging import Page
from telekol.server.fhir_store.search import (
    observation_filter,
    observation_sort,
)
from telekol.server.models import Device, Observation, Patient, StoredResource
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir import (
    audit as fhir_audit_api,
)
from telekol.server.web.fhir import (
    care_plan as fhir_care_plan_api,
)
from telekol.server.web.fhir import (
    directory as fhir_directory_api,
)
from telekol.server.web.fhir import (
    episode as fhir_episode_api,
)
from telekol.server.web.fhir import (
    questionnaire as fhir_questionnaire_api,
)
from telekol.server.web.fhir import (
    task as fhir_task_api,
)
from telekol.server.web.fhir import (
    write as fhir_write,
)
from telekol.server.web.fhir.http import (
    base_url,
    bp,
    fhir_auth,
    fhir_response,
    not_found,
    outcome_response,
    resource_response,
    searchset,
)
from telekol.server.web.fhir.search import search

__all__ = ["bp", "fhir_audit_api", "fhir_care_plan_api", "fhir_directory_api",
           "fhir_episode_api", "fhir_questionnaire_api", "fhir_task_api", "fhir_write",
           "outcome_response"]
def _params() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


@bp.get("/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement: exactly what this server implements."""
    return fhir_response(fhir_resources.capability_statement(base_url()))


@bp.get("/Patient/<patient_id>")
@fhir_auth
def read_patient(patient_id: str) -> Response:
    """Read one patient the caller may see."""
    patient = visible_patient(db(), the_user(), patient_id)
    if patient is None:
        return not_found("Patient", patient_id)
    note(patient.id, "read", f"Patient/{patient.id}")
    return resource_response(fhir_resources.patient(db(), patient))


@bp.get("/Patient")
@fhir_auth
def search_patients() -> Response:
    """Search patients by `identifier` (CPR, with or without system) or `_id`."""
    return search("Patient", directory.patient_filter(the_user(), _params()),
                  directory.by_id(col(Patient.id)), lambda row: fhir_resources.patient(db(), row),
                  patient_of=lambda row: row.id)


@bp.get("/Observation/<observation_id>")
@bp.get("/Observation/<observation_id>/_history/<version_id>")
@fhir_auth
def read_observation(observation_id: str, version_id: str | None = None) -> Response:
    """Read (or vread: stored versions are never changed) an observation the caller may see."""
    row = db().exec(observation_filter(the_user(), {}).where(
        Observation.id == observation_id)).first()
    if row is None or (version_id is not None and version_id != str(row.version_id)):
        return not_found("Observation", observation_id + (f"/_history/{version_id}"
                                                          if version_id else ""))
    note(row.patient_id, "read", f"Observation/{observation_id}")
    return resource_response(json.loads(row.resource))


@bp.get("/Observation")
@fhir_auth
def search_observations() -> Response:
    """Search observations; keyset-paged in `_sort` order, with `_include` of patient/device."""
    params = _params()
    return search("Observation", observation_filter(the_user(), params),
                  observation_sort(params), lambda row: json.loads(row.resource),
                  lambda found: _observation_includes(found, params.get("_include", [])),
                  patient_of=lambda row: row.patient_id)


def _observation_includes(found: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    refs = {("Patient" if v != "Observation:device" else "Device") for v in wanted}
    ids = {r[key]["reference"] for r in found for key in ("subject", "device") if key in r}
    included: list[dict[str, Any]] = []
    if "Patient" in refs:
        patient_ids = {i.split("/")[1] for i in ids if i.startswith("Patient/")}
        rows = db().exec(select(Patient).where(col(Patient.id).in_(patient_ids))).all()
        included += [fhir_resources.patient(db(), p) for p in rows]
    if "Device" in refs:
        device_ids = {i.split("/")[1] for i in ids if i.startswith("Device/")}
        rows_d = db().exec(select(Device).where(col(Device.id).in_(device_ids))).all()
        included += [fhir_resources.device(d) for d in rows_d]
    return included


@bp.get("/Patient/<patient_id>/$everything")
@fhir_auth
def everything(patient_id: str) -> Response:
    """Return the patient, devices, observations, questionnaire responses, provenance and
    (for the care team) the Tasks of the patient's alerts."""
    patient = visible_patient(db(), the_user(), patient_id)
    if patient is None:
        return not_found("Patient", patient_id)
    note(patient.id, "read", f"Patient/{patient.id}/$everything")
    resources = [fhir_resources.patient(db(), patient)]
    devices = db().exec(select(Device).where(Device.patient_id == patient.id)).all()
    resources += [fhir_resources.device(d) for d in devices]
    rows = db().exec(select(Observation.resource).where(Observation.patient_id == patient.id)
                     .order_by(col(Observation.effective).desc())).all()
    stored = db().exec(select(StoredResource.resource).where(
        StoredResource.patient_id == patient.id).order_by(col(StoredResource.id))).all()
    resources += [json.loads(text) for text in [*rows, *stored]]
    resources += fhir_task_api.patient_tasks(db(), the_user(), patient.id)
    page = Page((), len(resources), len(resources))
    return fhir_response(searchset(f"Patient/{patient_id}/$everything", {}, page, resources))


@bp.get("/Device/<device_id>")
@fhir_auth
def read_device(device_id: str) -> Response:
    """Read a device assigned to a patient the caller may see."""
    device = db().get(Device, device_id)
    if device is None or device.patient_id is None or visible_patient(
            db(), the_user(), device.patient_id) is None:
        return not_found("Device", device_id)
    note(device.patient_id, "read", f"Device/{device_id}")
    return resource_response(fhir_resources.device(device))
