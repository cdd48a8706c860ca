"""Build the FHIR R4 Provenance of data a clinician entered for a patient (pure).

The non-digital route: a patient reads a value or answers a questionnaire out over the
telephone, on paper or in person, and a clinician enters it. The Provenance names the
clinician (enterer, on behalf of their organisation), the patient (informant and source)
and how the data was obtained (an `activity` coding of ENTRY_METHOD_SYSTEM).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telekol.fhir.validation import validate_resource

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# Placeholder canonical owned by the TeleKOL project: how manually entered data was obtained.
ENTRY_METHOD_SYSTEM = "https://telekol.dk/fhir/CodeSystem/entry-method"
VERBAL_REPORT = "verbal report by telephone"
# code -> display (English); docs/fhir.md lists the same table.
ENTRY_METHODS = {
    "telephone": VERBAL_REPORT,
    "paper": "transcribed from paper",
    "in-person": "reported in person",
}


def entry_provenance(*, provenance_id: str, targets: Sequence[str], patient_id: str,
                     practitioner: dict[str, str], organization_id: str | None, recorded: str,
                     method: str = "telephone", what: str = "Reading") -> dict[str, Any]:
    """Return a validated Provenance: who entered `targets`, for whom, and how obtained."""
    how = ENTRY_METHODS[method]
    enterer: dict[str, Any] = {"type": _concept(PARTICIPANT_TYPE, "enterer", "Enterer"),
                               "who": practitioner}
    if organization_id:
        enterer["onBehalfOf"] = {"reference": f"Organization/{organization_id}"}
    informant = {"type": _concept(PARTICIPANT_TYPE, "informant", "Informant"),
                 "who": {"reference": f"Patient/{patient_id}"}}
    return validate_resource({
        "resourceType": "Provenance", "id": provenance_id,
        "target": [{"reference": target} for target in targets],
        "recorded": recorded,
        "reason": [_concept(ACT_REASON, "TREAT", "treatment")],
        "activity": {"coding": [
            {"system": DATA_OPERATION, "code": "CREATE", "display": "create"},
            {"system": ENTRY_METHOD_SYSTEM, "code": method, "display": how}], "text": how},
        "agent": [enterer, informant],
        "entity": [{"role": "source", "what": {
            "reference": f"Patient/{patient_id}",
            "display": f"{what} reported by the patient ({how})"}}],
    })


def telephone_entry_provenance(*, provenance_id: str, observation_id: str, patient_id: str,
                               practitioner: dict[str, str], organization_id: str | None,
                               recorded: str) -> dict[str, Any]:
    """Return the Provenance of one Observation a patient read out over the telephone."""
    return entry_provenance(provenance_id=provenance_id,
                            targets=[f"Observation/{observation_id}"], patient_id=patient_id,
                            practitioner=practitioner, organization_id=organization_id,
                            recorded=recorded)


def entry_method(provenance: dict[str, Any]) -> str | None:
    """Return the entry method code a Provenance records, if any."""
    codings = (provenance.get("activity") or {}).get("coding", [])
    return next((c["code"] for c in codings if c.get("system") == ENTRY_METHOD_SYSTEM), None)


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}
