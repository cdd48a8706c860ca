"""Search SQL for the small FHIR types: Patient, Organization, Practitioner(Role), Provenance."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from telekol.fhir.organization import SOR_SYSTEM
from telekol.fhir.practitioner import CLINICIAN_ROLES
from telekol.server.care.access import visible_patient_ids, visible_patients
from telekol.server.fhir_store.paging import SortKey
from telekol.server.fhir_store.resources import cpr_values
from telekol.server.fhir_store.search import check_params, includes, reference_id, tokens
from telekol.server.models import Organization, Patient, StoredResource, User

PAGING = {"_count", "_cursor", "_summary", "_format"}
PATIENT_PARAMS = {"identifier", "_id", *PAGING}
ORGANIZATION_PARAMS = {"identifier", "name", "_id", *PAGING}
PRACTITIONER_PARAMS = {"_id", "organization", *PAGING}
ROLE_PARAMS = {"_id", "organization", "practitioner", "_include", *PAGING}
ROLE_INCLUDES = {"PractitionerRole:practitioner", "PractitionerRole:organization"}
PROVENANCE_PARAMS = {"_id", "target", "patient", *PAGING}


def by_id(column: Any) -> SortKey:
    """Return the keyset order of a type paged by its id."""
    return SortKey(column, column)


def patient_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the patients `user` may see matching `identifier` (CPR) and `_id`."""
    check_params(params, PATIENT_PARAMS)
    query = visible_patients(user)
    for raw in params.get("identifier", []):
        query = query.where(col(Patient.cpr).in_(cpr_values(raw)))
    for raw in params.get("_id", []):
        query = query.where(col(Patient.id).in_(raw.split(",")))
    return query


def organization_filter(params: dict[str, list[str]]) -> Any:
    """Return organisations matching SOR `identifier`, `name` (starts with) and `_id`."""
    check_params(params, ORGANIZATION_PARAMS)
    query = select(Organization)
    for raw in params.get("identifier", []):
        codes = [code for system, code in tokens(raw) if system in (None, SOR_SYSTEM)]
        query = query.where(col(Organization.sor_code).in_(codes))
    for raw in params.get("name", []):
        names = [func.lower(col(Organization.name)).startswith(v.strip().lower(), autoescape=True)
                 for v in raw.split(",")]
        query = query.where(or_(*names))
    for raw in params.get("_id", []):
        query = query.where(col(Organization.id).in_(raw.split(",")))
    return query


def clinician_filter(params: dict[str, list[str]], allowed: set[str]) -> Any:
    """Return clinician accounts (Practitioner and PractitionerRole) matching the search."""
    check_params(params, allowed)
    query = select(User).where(col(User.role).in_(CLINICIAN_ROLES),
                               col(User.organization_id).is_not(None))
    for raw in params.get("_id", []):
        query = query.where(col(User.id).in_(_user_ids(raw.split(","))))
    for raw in params.get("practitioner", []):
        ids = [reference_id(part, "Practitioner") for part in raw.split(",")]
        query = query.where(col(User.id).in_(_user_ids(ids)))
    for raw in params.get("organization", []):
        orgs = [reference_id(part, "Organization") for part in raw.split(",")]
        query = query.where(col(User.organization_id).in_(orgs))
    return query


def provenance_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the Provenance records of visible patients matching `target`, `patient`, `_id`."""
    check_params(params, PROVENANCE_PARAMS)
    query = select(StoredResource).where(
        StoredResource.resource_type == "Provenance",
        col(StoredResource.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
    for raw in params.get("_id", []):
        query = query.where(col(StoredResource.id).in_(raw.split(",")))
    for raw in params.get("patient", []):
        ids = [reference_id(part, "Patient") for part in raw.split(",")]
        query = query.where(col(StoredResource.patient_id).in_(ids))
    for raw in params.get("target", []):
        ident = reference_id(raw, "Observation")
        # The stored JSON is written by this server with fixed separators (see manual_entry).
        needle = json.dumps({"reference": f"Observation/{ident}"}, separators=(",", ":"))
        query = query.where(col(StoredResource.resource).contains(needle, autoescape=True))
    return query


def role_includes(params: dict[str, list[str]]) -> list[str]:
    """Return the `_include` values of a PractitionerRole search."""
    return includes(params, ROLE_INCLUDES)


def _user_ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.strip().isdigit()] or [-1]

