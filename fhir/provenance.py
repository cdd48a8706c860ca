"""Build the FHIR R4 Provenance of a reading a clinician entered from a phone call (pure)."""

from __future__ import annotations

from typing import Any

from telekol.fhir.validation import validate_resource

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# Placeholder canonical owned by the TeleKOL project: how a manual reading was obtained.
ENTRY_METHOD_SYSTEM = "https://telekol.dk/fhir/CodeSystem/entry-method"
VERBAL_REPORT = "verbal report by telephone"


def telephone_entry_provenance(*, provenance_id: str, observation_id: str, patient_id: str,
                               practitioner: dict[str, str], organization_id: str | None,
                               recorded: str) -> dict[str, Any]:
    """Return a validated Provenance: who entered an Observation, for whom, and how."""
    enterer: dict[str, Any] = {"type": _concept(PARTICIPANT_TYPE, "enterer", "Enterer"),
                               "who": practitioner}
    if organization_id:
        enterer["onBehalfOf"] = {"reference": f"Organization/{organization_id}"}
    informant = {"type": _concept(PARTICIPANT_TYPE, "informant", "Informant"),
                 "who": {"reference": f"Patient/{patient_id}"}}
    return validate_resource({
        "resourceType": "Provenance", "id": provenance_id,
        "target": [{"reference": f"Observation/{observation_id}"}],
        "recorded": recorded,
        "reason": [_concept(ACT_REASON, "TREAT", "treatment")],
        "activity": {"coding": [
            {"system": DATA_OPERATION, "code": "CREATE", "display": "create"},
            {"system": ENTRY_METHOD_SYSTEM, "code": "telephone", "display": VERBAL_REPORT}],
            "text": VERBAL_REPORT},
        "agent": [enterer, informant],
        "entity": [{"role": "source", "what": {
            "reference": f"Patient/{patient_id}",
            "display": f"Reading reported by the patient ({VERBAL_REPORT})"}}],
    })


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}
