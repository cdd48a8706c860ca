"""FHIR reads and searches of the directory (Organization, Practitioner, PractitionerRole)
and of Provenance, on the /fhir blueprint."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, request
from sqlmodel import col, select
from telekol.server.fhir_store import directory
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.models import Organization, StoredResource, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import (
    bp,
    fhir_auth,
    not_found,
    outcome_response,
    resource_response,
)
from telekol.server.web.fhir.search import search


def staff_only(view: Callable[..., Response]) -> Callable[..., Response]:
    """Serve the directory to care staff: organisations and staff are not patient data."""
    @wraps(view)
    @fhir_auth
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if the_user().role == "patient":
            return outcome_response(403, "forbidden", "the directory is for care staff")
        return view(*args, **kwargs)
    return wrapper


def _params() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


@bp.get("/Organization/<org_id>")
@staff_only
def read_organization(org_id: str) -> Response:
    """Read one organisation."""
    row = db().get(Organization, org_id)
    return resource_response(fhir_resources.organization(row)) if row else not_found(
        "Organization", org_id)


@bp.get("/Organization")
@staff_only
def search_organizations() -> Response:
    """Search organisations by SOR `identifier`, `name` or `_id`."""
    return search("Organization", directory.organization_filter(_params()),
                  directory.by_id(col(Organization.id)), fhir_resources.organization)


_CLINICIAN_VIEWS = {"Practitioner": fhir_resources.practitioner,
                    "PractitionerRole": fhir_resources.practitioner_role}


@bp.get("/<any(Practitioner, PractitionerRole):kind>/<ident>")
@staff_only
def read_clinician(kind: str, ident: str) -> Response:
    """Read one clinician as a Practitioner, or the PractitionerRole linking them to an org."""
    row = db().exec(directory.clinician_filter({"_id": [ident]}, {"_id"})).first()
    return resource_response(_CLINICIAN_VIEWS[kind](row)) if row else not_found(kind, ident)


@bp.get("/Practitioner")
@staff_only
def search_practitioners() -> Response:
    """Search practitioners by `organization` or `_id`."""
    return search("Practitioner", directory.clinician_filter(
        _params(), directory.PRACTITIONER_PARAMS), directory.by_id(col(User.id)),
        fhir_resources.practitioner)


@bp.get("/PractitionerRole")
@staff_only
def search_practitioner_roles() -> Response:
    """Search roles by `organization`, `practitioner` or `_id`, with `_include`."""
    params = _params()
    query = directory.clinician_filter(params, directory.ROLE_PARAMS)
    wanted = directory.role_includes(params)
    return search("PractitionerRole", query, directory.by_id(col(User.id)),
                  fhir_resources.practitioner_role,
                  lambda found: _role_includes(found, wanted))


def _role_includes(found: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    included: list[dict[str, Any]] = []
    if "PractitionerRole:practitioner" in wanted:
        ids = [int(r["id"]) for r in found]
        users = db().exec(select(User).where(col(User.id).in_(ids))).all()
        included += [fhir_resources.practitioner(u) for u in users]
    if "PractitionerRole:organization" in wanted:
        orgs = {r["organization"]["reference"].split("/")[1] for r in found}
        rows = db().exec(select(Organization).where(col(Organization.id).in_(orgs))).all()
        included += [fhir_resources.organization(o) for o in rows]
    return included


@bp.get("/Provenance/<ident>")
@fhir_auth
def read_provenance(ident: str) -> Response:
    """Read a Provenance record about a patient the caller may see."""
    row = db().exec(directory.provenance_filter(the_user(), {"_id": [ident]})).first()
    if row is None:
        return not_found("Provenance", ident)
    note(row.patient_id, "read", f"Provenance/{ident}")
    return resource_response(json.loads(row.resource))


@bp.get("/Provenance")
@fhir_auth
def search_provenance() -> Response:
    """Search Provenance by `target` (Observation), `patient` or `_id`."""
    return search("Provenance", directory.provenance_filter(the_user(), _params()),
                  directory.by_id(col(StoredResource.id)), lambda row: json.loads(row.resource),
                  patient_of=lambda row: row.patient_id)
