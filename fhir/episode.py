"""Build FHIR R4 EpisodeOfCare, CareTeam and Consent for a telemonitoring episode (pure).

The mapping follows the Danish eHealth infrastructure's responsibility model
(docs/care-team.md): `managingOrganization` is the data custodian, which never changes
within an episode; the organisation responsible for monitoring is the infrastructure's
care-manager organisation (its `ehealth-episodeofcare-caremanagerOrganization`
extension); treatment responsibility, which the infrastructure has no element for, is a
TeleKOL extension; both also appear as roles on the CareTeam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telekol.fhir.validation import validate_resource

CARE_MANAGER_EXTENSION = ("http://ehealth.sundhed.dk/fhir/StructureDefinition/"
                          "ehealth-episodeofcare-caremanagerOrganization")
# Placeholder canonicals owned by the TeleKOL project.
TELEKOL = "https://telekol.dk/fhir"
TREATMENT_EXTENSION = f"{TELEKOL}/StructureDefinition/treatment-organization"
SEES_DATA_EXTENSION = f"{TELEKOL}/StructureDefinition/sees-data"
CONSENT_METHOD_EXTENSION = f"{TELEKOL}/StructureDefinition/consent-method"
CONSENT_NOTE_EXTENSION = f"{TELEKOL}/StructureDefinition/consent-note"
CARE_TEAM_ROLE_SYSTEM = f"{TELEKOL}/CodeSystem/care-team-role"
EPISODE_TYPE_SYSTEM = f"{TELEKOL}/CodeSystem/episode-type"
CONSENT_CATEGORY_SYSTEM = f"{TELEKOL}/CodeSystem/consent-category"
EHEALTH_CONSENT_CATEGORY = "http://ehealth.sundhed.dk/cs/consent-category"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
# ICD-10 J44 (COPD) as the Danish SKS code DJ44, the infrastructure's CareTeam reasonCode.
SKS_SYSTEM = "urn:oid:1.2.208.176.2.4"

ROLE_DISPLAY = {"monitoring": "Monitoring responsibility", "treatment": "Treatment responsibility",
                "custodian": "Data custodian", "specialist": "Specialist", "member": "Member"}
CONDITION_REASON = {"copd": ("DJ44", "Kronisk obstruktiv lungesygdom (KOL)")}
_SCOPE = {"participation": ("treatment", "Treatment"),
          "sharing": ("patient-privacy", "Privacy Consent")}
_CATEGORY = {"participation": [{"system": EHEALTH_CONSENT_CATEGORY, "code": "PITEOC",
                                "display": "Participate in Telemedical EpisodeOfCare"}],
             "sharing": [{"system": CONSENT_CATEGORY_SYSTEM, "code": "cross-sector-sharing",
                          "display": "Sharing of telemonitoring data across sectors"}]}


def episode_of_care_resource(*, episode_id: str, patient_id: str, status: str, condition: str,
                             custodian_org_id: str, monitoring_org_id: str,
                             treatment_org_id: str, started_at: str, ended_at: str | None,
                             team_id: str) -> dict[str, Any]:
    """Return a validated EpisodeOfCare; times are FHIR instants."""
    if status not in ("active", "finished"):
        raise ValueError(f"episode {episode_id}: no EpisodeOfCare status for {status!r}")
    resource: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": episode_id,
        "extension": [
            {"url": CARE_MANAGER_EXTENSION, "valueReference": _org(monitoring_org_id)},
            {"url": TREATMENT_EXTENSION, "valueReference": _org(treatment_org_id)}],
        "status": status,
        "type": [{"coding": [{"system": EPISODE_TYPE_SYSTEM, "code": f"telemonitoring-{condition}",
                              "display": f"Telemonitoring ({condition.upper()})"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": _org(custodian_org_id),
        "period": {"start": started_at, **({"end": ended_at} if ended_at else {})},
        "team": [{"reference": f"CareTeam/{team_id}"}],
    }
    return validate_resource(resource)


@dataclass(frozen=True)
class TeamMember:
    """An organisation on a care team: its part in the care and whether it sees the data."""

    org_id: str
    role: str  # monitoring | treatment | specialist | member
    sees_data: bool
    custodian: bool = False


def care_team_resource(*, team_id: str, patient_id: str, active: bool, condition: str,
                       episode_name: str, members: list[TeamMember]) -> dict[str, Any]:
    """Return a validated CareTeam of organisations with their roles."""
    code, display = CONDITION_REASON.get(condition, (None, condition))
    resource: dict[str, Any] = {
        "resourceType": "CareTeam", "id": team_id,
        "status": "active" if active else "inactive",
        "name": episode_name,
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [_participant(m) for m in members],
    }
    if code:
        resource["reasonCode"] = [{"coding": [{"system": SKS_SYSTEM, "code": code,
                                               "display": display}]}]
    return validate_resource(resource)


def _participant(member: TeamMember) -> dict[str, Any]:
    roles = [member.role, *(["custodian"] if member.custodian else [])]
    return {"extension": [{"url": SEES_DATA_EXTENSION, "valueBoolean": member.sees_data}],
            "role": [{"coding": [{"system": CARE_TEAM_ROLE_SYSTEM, "code": role,
                                  "display": ROLE_DISPLAY.get(role, role)}]} for role in roles],
            "member": _org(member.org_id)}


def consent_resource(*, consent_id: str, patient_id: str, scope: str, granted: bool,
                     in_force: bool, method: str, note: str, recorded_at: str,
                     custodian_org_id: str | None) -> dict[str, Any]:
    """Return a validated Consent: permit (granted) or deny (withdrawn); the newest decision
    per scope is active, earlier ones inactive."""
    if scope not in _SCOPE:
        raise ValueError(f"consent {consent_id}: no Consent mapping for scope {scope!r}")
    scope_code, scope_display = _SCOPE[scope]
    extension: list[dict[str, Any]] = [{"url": CONSENT_METHOD_EXTENSION, "valueCode": method}]
    if note:
        extension.append({"url": CONSENT_NOTE_EXTENSION, "valueString": note})
    resource: dict[str, Any] = {
        "resourceType": "Consent", "id": consent_id, "extension": extension,
        "status": "active" if in_force else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": scope_code,
                              "display": scope_display}]},
        "category": [{"coding": [*_CATEGORY[scope], {"system": LOINC, "code": "59284-0",
                                                      "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": recorded_at,
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "policyRule": {"coding": [{"system": ACT_CODE_SYSTEM,
                                   "code": "OPTIN" if granted else "OPTOUT"}]},
        "provision": {"type": "permit" if granted else "deny"},
    }
    if custodian_org_id:
        resource["organization"] = [_org(custodian_org_id)]
    return validate_resource(resource)


def _org(org_id: str) -> dict[str, str]:
    return {"reference": f"Organization/{org_id}"}
