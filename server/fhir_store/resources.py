"""Stored rows rendered as FHIR resources (with meta), and the CapabilityStatement."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select
from telekol.fhir.cpr import CPR_SYSTEM
from telekol.fhir.device import device_resource
from telekol.fhir.organization import organization_resource
from telekol.fhir.patient import patient_resource
from telekol.fhir.practitioner import practitioner_resource, practitioner_role_resource
from telekol.fhir.validation import validate_resource
from telekol.server.models import CareTeamMember, Device, Organization, Patient, User

FHIR_VERSION = "4.0.1"


def with_meta(resource: dict[str, Any], last_updated: datetime | None) -> dict[str, Any]:
    """Add meta: versionId is a hash of the content, so it changes whenever the resource does."""
    digest = hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()[:16]
    meta: dict[str, Any] = {"versionId": digest}
    if last_updated is not None:
        meta["lastUpdated"] = instant(last_updated)
    return {**resource, "meta": meta}


def instant(moment: datetime) -> str:
    """Render an aware datetime as a FHIR instant in UTC."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def patient(session: Session, row: Patient) -> dict[str, Any]:
    """Return the Patient resource of a stored patient."""
    monitoring = session.exec(select(CareTeamMember.organization_id).where(
        CareTeamMember.patient_id == row.id, CareTeamMember.role == "monitoring")).first()
    return with_meta(patient_resource(patient_id=row.id, cpr=row.cpr, family=row.family,
                                      given=row.given.split(), managing_org_id=monitoring),
                     row.created_at)


def device(row: Device) -> dict[str, Any]:
    """Return the Device resource of a stored device."""
    return with_meta(device_resource(device_id=row.id, patient_id=row.patient_id,
                                     model=row.model, serial=row.serial, kind=row.kind),
                     row.last_seen_at or row.created_at)


def organization(row: Organization) -> dict[str, Any]:
    """Return the Organization resource of an organisation (no timestamp is stored for it)."""
    return with_meta(organization_resource(org_id=row.id, name=row.name, kind=row.kind,
                                           sor_code=row.sor_code, phone=row.phone), None)


def practitioner(row: User) -> dict[str, Any]:
    """Return the Practitioner resource of a clinician account."""
    return with_meta(practitioner_resource(practitioner_id=str(row.id), name=row.display_name,
                                           active=row.active), row.created_at)


def practitioner_role(row: User) -> dict[str, Any]:
    """Return the PractitionerRole linking a clinician account to its organisation."""
    return with_meta(practitioner_role_resource(
        role_id=str(row.id), practitioner_id=str(row.id), organization_id=row.organization_id or "",
        role=row.role, active=row.active), row.created_at)


def cpr_values(raw: str) -> list[str]:
    """Return the CPR numbers an `identifier` search names (other systems match nothing)."""
    values = []
    for token in raw.split(","):
        system, bar, value = token.rpartition("|") if "|" in token else ("", "", token)
        if bar and system not in ("", CPR_SYSTEM):
            continue
        values.append(value.replace("-", "").strip())
    return values


def _param(name: str, kind: str, documentation: str | None = None) -> dict[str, str]:
    entry = {"name": name, "type": kind}
    if documentation:
        entry["documentation"] = documentation
    return entry


def _resource(kind: str, interactions: list[str], params: list[dict[str, str]],
              **extra: Any) -> dict[str, Any]:
    return {"type": kind, "interaction": [{"code": code} for code in interactions],
            **({"searchParam": params} if params else {}), **extra}


_ID = _param("_id", "token")
_PATIENT_EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


def capability_statement(base_url: str) -> dict[str, Any]:
    """Describe exactly the interactions and search parameters implemented."""
    read_search = ["read", "search-type"]
    resources = [
        _resource("Patient", read_search, [_param("identifier", "token"), _ID],
                  operation=[{"name": "everything", "definition": _PATIENT_EVERYTHING}]),
        _resource("Observation", ["read", "search-type", "create"], [
            _param("patient", "reference"), _param("subject", "reference"),
            _param("code", "token"), _param("date", "date"), _param("identifier", "token"),
            _param("status", "token"), _param("_lastUpdated", "date"), _ID],
            conditionalCreate=True,
            searchInclude=["Observation:patient", "Observation:subject", "Observation:device"],
            documentation="create: a reading a patient reported by telephone, entered by a "
                          "clinician with a bearer token; _sort: date, _lastUpdated or _id, "
                          "each optionally descending (default -date)"),
        _resource("Device", ["read"], []),
        _resource("Organization", read_search, [
            _param("identifier", "token"), _param("name", "string"), _ID]),
        _resource("Practitioner", read_search, [
            _param("organization", "reference", "Organization of the practitioner's role"), _ID]),
        _resource("PractitionerRole", read_search, [
            _param("organization", "reference"), _param("practitioner", "reference"), _ID],
            searchInclude=["PractitionerRole:practitioner", "PractitionerRole:organization"]),
        _resource("Provenance", read_search, [
            _param("target", "reference"), _param("patient", "reference"), _ID]),
        _resource("Questionnaire", read_search, [
            _param("url", "uri"), _param("name", "string"), _param("status", "token"), _ID],
            documentation="the CAT (id cat) and the COPD symptom diary (id copd-symptoms)"),
        _resource("QuestionnaireResponse", read_search, [
            _param("patient", "reference"), _param("subject", "reference"),
            _param("questionnaire", "reference", "the canonical URL, Questionnaire/{id} or {id}"),
            _param("authored", "date"), _ID],
            documentation="_sort: authored, _lastUpdated or _id, each optionally descending "
                          "(default -authored)"),
        _resource("Task", read_search, [
            _param("patient", "reference"), _param("subject", "reference"),
            _param("status", "token", "requested (open), in-progress (acknowledged), on-hold "
                   "(snoozed), completed (resolved)"),
            _param("priority", "token", "asap (red), urgent (yellow), routine (blue)"),
            _param("owner", "reference", "Organization/{id} that must act"),
            _param("_lastUpdated", "date"), _ID],
            documentation="one Task per alert (id alert-{id}), visible to the patient's care "
                          "team; _sort: authored-on, _lastUpdated or _id, each optionally "
                          "descending (default -authored-on)"),
        _resource("CarePlan", ["read", "vread", "search-type"], [
            _param("patient", "reference"), _param("subject", "reference"), _ID],
            documentation="the shared care plan, one per episode (id = the episode id, "
                          "versionId = the plan version); schedules as activities, limits in "
                          "activity.detail (docs/clinical.md)"),
        _resource("EpisodeOfCare", read_search, [
            _param("patient", "reference"), _param("status", "token", "active or finished"), _ID],
            documentation="managingOrganization = data custodian; monitoring responsibility in "
                          "the eHealth caremanagerOrganization extension, treatment in a "
                          "TeleKOL extension (docs/care-team.md)"),
        _resource("CareTeam", read_search, [
            _param("patient", "reference"), _param("subject", "reference"), _ID],
            documentation="one per patient (id = the patient's id): organisations with their "
                          "roles and whether consent lets them see the data"),
        _resource("Consent", read_search, [
            _param("patient", "reference"),
            _param("scope", "token", "treatment (participation), patient-privacy (sharing)"),
            _ID], documentation="every decision recorded; the newest per scope is active"),
        _resource("AuditEvent", read_search, [
            _param("patient", "reference"), _param("date", "date", "when it was recorded"), _ID],
            documentation="the audit log, newest first: a patient reads the records about "
                          "themselves, an administrator every record; care staff get 403"),
    ]
    paging = [_param("_count", "number", "page size, 0 for the total only"),
              _param("_summary", "token", "count: the total only"),
              _param("_cursor", "string", "opaque paging token from the next/previous links")]
    statement = {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-25",
        "kind": "instance", "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "software": {"name": "TeleKOL", "version": "0.1.0"},
        "implementation": {"description": "TeleKOL COPD telemonitoring", "url": base_url},
        "rest": [{"mode": "server", "resource": resources, "searchParam": paging,
                  "security": {"description": "Bearer token from POST /api/auth/token "
                               "(Authorization: Bearer ...), or a browser session for reads; "
                               "writes need a bearer token; a patient the caller may not see "
                               "answers 404"}}],
    }
    return validate_resource(statement)
