"""Build the FHIR R4 AuditEvent of one audit record (pure): who did what to which patient."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from telekol.fhir.validation import validate_resource

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
# Placeholder canonicals owned by the TeleKOL project.
ACTION_SYSTEM = "https://telekol.dk/fhir/CodeSystem/audit-action"
USER_ROLE_SYSTEM = "https://telekol.dk/fhir/CodeSystem/user-role"
USERNAME_SYSTEM = "https://telekol.dk/fhir/sid/username"
CHAIN_HASH_URL = "https://telekol.dk/fhir/StructureDefinition/audit-chain-hash"

REST_DOORS = ("api", "fhir")
# The record's action -> (restful-interaction code, AuditEvent.action).
ACTIONS = {"read": ("read", "R"), "search": ("search-type", "E"), "create": ("create", "C"),
           "update": ("update", "U"), "delete": ("delete", "D")}
OTHER_ACTIONS = {"export": "R", "push": "R", "subscribe": "E"}  # else E (execute)
OUTCOMES = {"success": ("0", "Success"), "denied": ("4", "Minor failure: refused"),
            "failed": ("8", "Serious failure")}
_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")
CLINICAL_ROLES = ("nurse", "doctor", "gp", "secretary")


@dataclass(frozen=True)
class AuditFacts:
    """What an audit record says, as plain values (server/audit/log.py stores them)."""

    record_id: int
    recorded: str  # FHIR instant
    action: str
    resource: str
    door: str
    outcome: str
    patient_id: str | None = None
    user_id: int | None = None
    username: str | None = None
    display_name: str | None = None
    role: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None
    status: int | None = None
    detail: str = ""
    chain_hash: str | None = None


def audit_event(facts: AuditFacts) -> dict[str, Any]:
    """Return a validated AuditEvent for one audit record."""
    outcome_code, outcome_text = OUTCOMES.get(facts.outcome, ("8", facts.outcome))
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": str(facts.record_id),
        "type": _event_type(facts.door), "subtype": _subtype(facts.action),
        "action": ACTIONS.get(facts.action, ("", OTHER_ACTIONS.get(facts.action, "E")))[1],
        "recorded": facts.recorded, "outcome": outcome_code,
        "outcomeDesc": outcome_text + (f" (HTTP {facts.status})" if facts.status else ""),
        "agent": _agents(facts),
        "source": {"site": f"TeleKOL {facts.door}", "observer": {"display": "TeleKOL"},
                   "type": [{"system": SOURCE_TYPE, "code": "4",
                             "display": "Application Server"}]},
        "entity": _entities(facts)}
    if facts.chain_hash:
        resource["extension"] = [{"url": CHAIN_HASH_URL, "valueString": facts.chain_hash}]
    return validate_resource(resource)


def _event_type(door: str) -> dict[str, str]:
    if door in REST_DOORS:
        return {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
    return {"system": DICOM, "code": "110110", "display": "Patient Record"}


def _subtype(action: str) -> list[dict[str, str]]:
    codings = [{"system": ACTION_SYSTEM, "code": action}]
    if action in ACTIONS:
        codings.insert(0, {"system": INTERACTION, "code": ACTIONS[action][0]})
    return codings


def _agents(facts: AuditFacts) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    if facts.user_id is not None:
        who: dict[str, Any] = {"identifier": {"system": USERNAME_SYSTEM,
                                              "value": facts.username or str(facts.user_id)}}
        if facts.role in CLINICAL_ROLES:
            who["reference"] = f"Practitioner/{facts.user_id}"
        if facts.display_name:
            who["display"] = facts.display_name
        user: dict[str, Any] = {"who": who, "requestor": True}
        if facts.role:
            user["type"] = {"coding": [{"system": USER_ROLE_SYSTEM, "code": facts.role}]}
        if facts.display_name:
            user["name"] = facts.display_name
        agents.append(user)
    if facts.organization_id:
        org_ref = {"reference": f"Organization/{facts.organization_id}",
                   "display": facts.organization_name or facts.organization_id}
        agents.append({"type": {"coding": [{"system": ROLE_CLASS, "code": "PROV",
                                            "display": "healthcare provider"}]},
                       "who": org_ref, "requestor": facts.user_id is None})
    if not agents:  # AuditEvent needs an agent: the platform itself
        agents.append({"who": {"display": "TeleKOL"}, "requestor": True})
    return agents


def _entities(facts: AuditFacts) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if facts.patient_id:
        entities.append({"what": {"reference": f"Patient/{facts.patient_id}"},
                         "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                         "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}})
    accessed: dict[str, Any] = {"type": {"system": ENTITY_TYPE, "code": "2",
                                         "display": "System Object"}}
    if _REFERENCE.fullmatch(facts.resource):
        accessed["what"] = {"reference": facts.resource}
    else:
        accessed["what"] = {"display": facts.resource}
        if "?" in facts.resource:
            accessed["query"] = base64.b64encode(facts.resource.encode()).decode()
    if facts.detail:
        accessed["detail"] = [{"type": "detail", "valueString": facts.detail}]
    entities.append(accessed)
    return entities
