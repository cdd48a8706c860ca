"""The FHIR REST door at /fhir: reads and searches, errors as OperationOutcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from sqlalchemy import func
from sqlmodel import col, select
from telekol.fhir.outcome import operation_outcome
from telekol.server import fhir_resources
from telekol.server.access import visible_patient, visible_patient_ids, visible_patients
from telekol.server.fhir_search import SearchError, observation_query
from telekol.server.models import Device, Observation, Patient
from telekol.server.web.auth import signed_in, the_user
from telekol.server.web.context import db
from telekol.server.web.extensions import csrf

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
csrf.exempt(bp)

FHIR_JSON = "application/fhir+json"
_ACCEPTABLE = {FHIR_JSON, "application/json", "application/json+fhir", "*/*", "application/*"}


def fhir_response(resource: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Return a resource as application/fhir+json."""
    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    response = Response(body, status=status, mimetype=FHIR_JSON)
    response.headers.update(headers or {})
    return response


def outcome_response(status: int, code: str, diagnostics: str) -> Response:
    """Return an OperationOutcome error with `status`."""
    return fhir_response(operation_outcome("error", code, diagnostics), status)


def not_found(kind: str, ident: str) -> Response:
    """Answer 404 exactly as for an absent resource (also used for denials)."""
    return outcome_response(404, "not-found", f"{kind}/{ident} is not known")


@bp.before_request
def negotiate() -> Response | None:
    """Refuse formats other than FHIR JSON (406) before doing any work."""
    wanted = request.args.get("_format")
    if wanted and wanted not in ("json", FHIR_JSON, "application/json"):
        return outcome_response(406, "not-supported", f"_format {wanted!r}: only JSON is served")
    accept = request.headers.get("Accept")
    if not wanted and accept and not any(
            part.split(";")[0].strip() in _ACCEPTABLE for part in accept.split(",")):
        return outcome_response(406, "not-supported", f"cannot produce {accept}; use {FHIR_JSON}")
    return None


def fhir_auth(view: Callable[..., Response]) -> Callable[..., Response]:
    """Require an authenticated user; answer 401 OperationOutcome otherwise."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if signed_in() is None:
            response = outcome_response(401, "login", "Authentication required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="telekol"'
            return response
        return view(*args, **kwargs)
    return wrapper


@bp.errorhandler(SearchError)
def bad_search(error: SearchError) -> Response:
    """Answer 400 for a search the server cannot honour."""
    return outcome_response(400, "invalid", str(error))


@bp.errorhandler(404)
def unknown_route(_error: Exception) -> Response:
    """Answer unknown FHIR paths with an OperationOutcome."""
    return outcome_response(404, "not-found", f"{request.path} is not implemented here")


@bp.errorhandler(405)
def wrong_method(_error: Exception) -> Response:
    """Answer unsupported interactions with an OperationOutcome."""
    return outcome_response(405, "not-supported", f"{request.method} {request.path} is not "
                            "supported; see /fhir/metadata")


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
    return fhir_response(fhir_resources.patient(db(), patient))


@bp.get("/Patient")
@fhir_auth
def search_patients() -> Response:
    """Search patients by `identifier` (CPR) or `_id` among those the caller may see."""
    params = request.args.to_dict(flat=False)
    unknown = set(params) - {"identifier", "_id", "_count", "_format"}
    if unknown:
        raise SearchError(f"unsupported search parameter(s): {', '.join(sorted(unknown))}")
    query = visible_patients(the_user())
    for raw in params.get("identifier", []):
        query = query.where(col(Patient.cpr).in_(fhir_resources.cpr_values(raw)))
    for raw in params.get("_id", []):
        query = query.where(col(Patient.id).in_(raw.split(",")))
    patients = db().exec(query.order_by(Patient.id).limit(1000)).all()
    entries = [fhir_resources.patient(db(), p) for p in patients]
    return fhir_response(searchset(entries, len(entries), "Patient", params, 0, len(entries)))


@bp.get("/Observation/<observation_id>")
@fhir_auth
def read_observation(observation_id: str) -> Response:
    """Read one observation of a patient the caller may see."""
    query = select(Observation).where(
        Observation.id == observation_id,
        col(Observation.patient_id).in_(visible_patient_ids(the_user()).scalar_subquery()))
    row = db().exec(query).first()
    if row is None:
        return not_found("Observation", observation_id)
    return fhir_response(json.loads(row.resource), headers={"ETag": f'W/"{row.version_id}"'})


@bp.get("/Observation")
@fhir_auth
def search_observations() -> Response:
    """Search observations by patient/subject, code, date with sorting and paging."""
    params = request.args.to_dict(flat=False)
    query, count, offset = observation_query(the_user(), params)
    total = db().exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = db().exec(query.offset(offset).limit(count)).all() if count else []
    entries = [json.loads(row.resource) for row in rows]
    return fhir_response(searchset(entries, total, "Observation", params, offset, count))


@bp.get("/Patient/<patient_id>/$everything")
@fhir_auth
def everything(patient_id: str) -> Response:
    """Return the patient, their devices and all their observations as one Bundle."""
    patient = visible_patient(db(), the_user(), patient_id)
    if patient is None:
        return not_found("Patient", patient_id)
    resources = [fhir_resources.patient(db(), patient)]
    devices = db().exec(select(Device).where(Device.patient_id == patient.id)).all()
    resources += [fhir_resources.device(d) for d in devices]
    rows = db().exec(select(Observation.resource).where(Observation.patient_id == patient.id)
                     .order_by(col(Observation.effective).desc())).all()
    resources += [json.loads(text) for text in rows]
    return fhir_response(searchset(resources, len(resources), None, {}, 0, len(resources)))


@bp.get("/Device/<device_id>")
@fhir_auth
def read_device(device_id: str) -> Response:
    """Read a device assigned to a patient the caller may see."""
    device = db().get(Device, device_id)
    if device is None or device.patient_id is None or visible_patient(
            db(), the_user(), device.patient_id) is None:
        return not_found("Device", device_id)
    return fhir_response(fhir_resources.device(device))


def base_url() -> str:
    """Return this server's FHIR base URL as the client reached it."""
    return request.url_root.rstrip("/") + "/fhir"


def searchset(resources: list[dict[str, Any]], total: int, kind: str | None,
              params: dict[str, list[str]], offset: int, count: int) -> dict[str, Any]:
    """Wrap resources in a searchset Bundle with self/next/previous links."""
    base = base_url()
    links = [{"relation": "self", "url": _page_url(kind, params, offset, count)}]
    if kind and count and offset + count < total:
        links.append({"relation": "next", "url": _page_url(kind, params, offset + count, count)})
    if kind and count and offset > 0:
        links.append({"relation": "previous",
                      "url": _page_url(kind, params, max(offset - count, 0), count)})
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def _page_url(kind: str | None, params: dict[str, list[str]], offset: int, count: int) -> str:
    if kind is None:
        return request.url
    query = [(k, v) for k, values in params.items() if k not in ("_offset", "_count")
             for v in values]
    query += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base_url()}/{kind}?{urlencode(query)}"
