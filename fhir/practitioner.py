"""Build FHIR R4 Practitioner and PractitionerRole resources for clinician accounts (pure)."""

from __future__ import annotations

from typing import Any

from telekol.fhir.validation import validate_resource

PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
# Placeholder canonical owned by the TeleKOL project: the account's role in TeleKOL.
USER_ROLE_SYSTEM = "https://telekol.dk/fhir/CodeSystem/user-role"
_ROLES = {  # TeleKOL role: (HL7 practitioner-role code or None, display)
    "nurse": ("nurse", "Nurse"),
    "doctor": ("doctor", "Doctor"),
    "gp": ("doctor", "General practitioner"),
    "secretary": (None, "Medical secretary"),
}
CLINICIAN_ROLES = frozenset(_ROLES)


def practitioner_resource(*, practitioner_id: str, name: str, active: bool) -> dict[str, Any]:
    """Return a validated Practitioner for a clinician account."""
    return validate_resource({"resourceType": "Practitioner", "id": practitioner_id,
                              "active": active, "name": [{"text": name}]})


def practitioner_role_resource(*, role_id: str, practitioner_id: str, organization_id: str,
                               role: str, active: bool) -> dict[str, Any]:
    """Return a validated PractitionerRole linking a practitioner to their organisation."""
    hl7, display = _ROLES[role]
    coding = [{"system": USER_ROLE_SYSTEM, "code": role, "display": display}]
    if hl7 is not None:
        coding.insert(0, {"system": PRACTITIONER_ROLE, "code": hl7, "display": hl7.title()})
    return validate_resource({
        "resourceType": "PractitionerRole", "id": role_id, "active": active,
        "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
        "organization": {"reference": f"Organization/{organization_id}"},
        "code": [{"coding": coding, "text": display}],
    })


def reference(kind: str, ident: str, display: str | None = None) -> dict[str, str]:
    """Return a FHIR Reference to `kind/ident`, with a display when given."""
    ref = {"reference": f"{kind}/{ident}"}
    if display:
        ref["display"] = display
    return ref
