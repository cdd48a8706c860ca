"""Stored rows rendered as FHIR resources, and the CapabilityStatement."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from telekol.fhir.cpr import CPR_SYSTEM
from telekol.fhir.device import device_resource
from telekol.fhir.patient import patient_resource
from telekol.fhir.validation import validate_resource
from telekol.server.models import CareTeamMember, Device, Patient

FHIR_VERSION = "4.0.1"


def patient(session: Session, row: Patient) -> dict[str, Any]:
    """Return the Patient resource of a stored patient."""
    monitoring = session.exec(select(CareTeamMember.organization_id).where(
        CareTeamMember.patient_id == row.id, CareTeamMember.role == "monitoring")).first()
    return patient_resource(patient_id=row.id, cpr=row.cpr, family=row.family,
                            given=row.given.split(), managing_org_id=monitoring)


def device(row: Device) -> dict[str, Any]:
    """Return the Device resource of a stored device."""
    return device_resource(device_id=row.id, patient_id=row.patient_id, model=row.model,
                           serial=row.serial, kind=row.kind)


def cpr_values(raw: str) -> list[str]:
    """Return the CPR numbers an `identifier` search names (other systems match nothing)."""
    values = []
    for token in raw.split(","):
        system, bar, value = token.rpartition("|") if "|" in token else ("", "", token)
        if bar and system not in ("", CPR_SYSTEM):
            continue
        values.append(value.replace("-", "").strip())
    return values


def capability_statement(base_url: str) -> dict[str, Any]:
    """Describe exactly the interactions and search parameters implemented."""
    def param(name: str, kind: str) -> dict[str, str]:
        return {"name": name, "type": kind}

    resources = [
        {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "searchParam": [param("identifier", "token"), param("_id", "token")],
         "operation": [{"name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]},
        {"type": "Observation", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "searchParam": [param("patient", "reference"), param("subject", "reference"),
                         param("code", "token"), param("date", "date"), param("_id", "token")]},
        {"type": "Device", "interaction": [{"code": "read"}]},
    ]
    statement = {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-25",
        "kind": "instance", "fhirVersion": FHIR_VERSION, "format": ["application/fhir+json"],
        "software": {"name": "TeleKOL", "version": "0.1.0"},
        "implementation": {"description": "TeleKOL COPD telemonitoring", "url": base_url},
        "rest": [{"mode": "server", "resource": resources,
                  "security": {"description": "Bearer token from POST /api/auth/token "
                               "(Authorization: Bearer ...), or a browser session; "
                               "a patient the caller may not see answers 404"}}],
    }
    return validate_resource(statement)
