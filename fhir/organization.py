"""Build a FHIR R4 Organization identified by its SOR code, with its phone number (pure)."""

from __future__ import annotations

from typing import Any

from telekol.fhir.validation import validate_resource

SOR_SYSTEM = "urn:oid:1.2.208.176.1.1"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
# Placeholder canonical owned by the TeleKOL project: which sector an organisation is in.
SECTOR_SYSTEM = "https://telekol.dk/fhir/CodeSystem/organization-sector"
SECTOR_DISPLAY = {"hospital": "Hospital department", "municipality": "Municipal home care",
                  "gp": "General practice"}


def organization_resource(*, org_id: str, name: str, kind: str, sor_code: str | None,
                          phone: str | None = None) -> dict[str, Any]:
    """Return a validated Organization with its SOR identifier, sector as type and phone."""
    sector = {"system": SECTOR_SYSTEM, "code": kind, "display": SECTOR_DISPLAY.get(kind, kind)}
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": org_id,
        "active": True,
        "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "prov",
                              "display": "Healthcare Provider"}, sector],
                  "text": sector["display"]}],
        "name": name,
    }
    if sor_code:
        resource["identifier"] = [{"use": "official", "system": SOR_SYSTEM, "value": sor_code}]
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "work"}]
    return validate_resource(resource)
