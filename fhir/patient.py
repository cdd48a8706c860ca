"""Build a FHIR R4 Patient with a Danish CPR identifier (pure)."""

from __future__ import annotations

from typing import Any

from telekol.fhir.cpr import CPR_SYSTEM, birth_date, sex, validate_cpr
from telekol.fhir.validation import validate_resource


def patient_resource(
    *,
    patient_id: str,
    cpr: str,
    family: str,
    given: list[str],
    managing_org_id: str | None = None,
) -> dict[str, Any]:
    """Return a validated Patient whose gender and birthDate come from the CPR number."""
    digits = validate_cpr(cpr)
    name: dict[str, Any] = {"use": "official", "family": family}
    if given:
        name["given"] = list(given)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"use": "official", "system": CPR_SYSTEM, "value": digits}],
        "name": [name],
        "gender": sex(digits),
        "birthDate": birth_date(digits).isoformat(),
    }
    if managing_org_id is not None:
        resource["managingOrganization"] = {"reference": f"Organization/{managing_org_id}"}
    return validate_resource(resource)
