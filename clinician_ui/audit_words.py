"""The audit log in an administrator's words: actions, doors, outcomes, roles, kinds of data.

Records store codes ("read", "ui", "Observation?patient=..."); the administration page says
them in the reader's language and keeps the exact resource as a technical identifier.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_pgettext
from telekol.clinician_ui.access_log_views import ROLES
from telekol.server.audit.log import resource_kind

ACTIONS: dict[str, Any] = {
    "read": lazy_pgettext("audit action", "read"),
    "search": lazy_pgettext("audit action", "searched"),
    "create": lazy_pgettext("audit action", "created"),
    "update": lazy_pgettext("audit action", "changed"),
    "delete": lazy_pgettext("audit action", "deleted"),
    "export": lazy_pgettext("audit action", "exported"),
    "push": lazy_pgettext("audit action", "was shown live"),
    "subscribe": lazy_pgettext("audit action", "started live updates"),
    "verify": lazy_pgettext("audit action", "checked the chain"),
    "provision": lazy_pgettext("audit action", "set up a device"),
}
DOORS: dict[str, Any] = {
    "ui": lazy_pgettext("audit door", "web page"), "api": lazy_pgettext("audit door", "API"),
    "fhir": lazy_pgettext("audit door", "FHIR"),
    "live": lazy_pgettext("audit door", "live update"),
    "cli": lazy_pgettext("audit door", "administration tool"),
    "export": lazy_pgettext("audit door", "export"),
    "mqtt": lazy_pgettext("audit door", "device"),
    "scheduler": lazy_pgettext("audit door", "scheduler"),
}
SYSTEM_ROLES: dict[str, Any] = {"device": lazy_pgettext("audit role", "device"),
                                "system": lazy_pgettext("audit role", "the platform")}
OUTCOMES: dict[str, Any] = {
    "success": lazy_pgettext("audit outcome", "allowed"),
    "denied": lazy_pgettext("audit outcome", "refused"),
    "failed": lazy_pgettext("audit outcome", "failed"),
}
KINDS: dict[str, Any] = {
    "Patient": lazy_pgettext("audit kind", "patient record"),
    "Observation": lazy_pgettext("audit kind", "measurements"),
    "CarePlan": lazy_pgettext("audit kind", "care plan"),
    "Message": lazy_pgettext("audit kind", "messages"),
    "MessageReadMark": lazy_pgettext("audit kind", "messages read"),
    "QuestionnaireResponse": lazy_pgettext("audit kind", "questionnaire answers"),
    "AuditEvent": lazy_pgettext("audit kind", "audit log"),
    "AuditRecord": lazy_pgettext("audit kind", "audit log"),
    "Alert": lazy_pgettext("audit kind", "alerts"),
    "InboxItem": lazy_pgettext("audit kind", "GP inbox"),
    "Consent": lazy_pgettext("audit kind", "consent"),
    "EpisodeOfCare": lazy_pgettext("audit kind", "monitoring course"),
    "CareTeam": lazy_pgettext("audit kind", "care team"),
    "Provenance": lazy_pgettext("audit kind", "origin of data"),
    "ThresholdProposal": lazy_pgettext("audit kind", "threshold proposal"),
    "Flag": lazy_pgettext("audit kind", "pause"),
    "MonitoringPause": lazy_pgettext("audit kind", "pause"),
    "Handover": lazy_pgettext("audit kind", "handover"),
    "Task": lazy_pgettext("audit kind", "task"),
    "Device": lazy_pgettext("audit kind", "device"),
    "User": lazy_pgettext("audit kind", "user"),
    "QuarantinedMessage": lazy_pgettext("audit kind", "rejected device data"),
    "Organization": lazy_pgettext("audit kind", "organisation"),
    "Practitioner": lazy_pgettext("audit kind", "staff"),
    "PractitionerRole": lazy_pgettext("audit kind", "staff"),
    "Page": lazy_pgettext("audit kind", "page"),
}
PUSHED: dict[str, Any] = {"alert": lazy_pgettext("audit kind", "alert"),
                          "observation": lazy_pgettext("audit kind", "measurement"),
                          "message": lazy_pgettext("audit kind", "message"),
                          "care_plan": lazy_pgettext("audit kind", "care plan"),
                          "proposal": lazy_pgettext("audit kind", "threshold proposal"),
                          "rooms": lazy_pgettext("audit kind", "live updates")}


def _word(table: dict[str, Any], code: str | None) -> str:
    found = table.get(code or "")
    return str(found) if found is not None else (code or "")


def record_words(record: Any) -> dict[str, str]:
    """Return one audit record's codes as words (the resource stays as an identifier too)."""
    kind = resource_kind(record.resource)
    pushed = record.resource.split("/", 1)[0].split(":", 1)[0]
    what = _word(PUSHED, pushed) if record.action in ("push", "subscribe") else _word(KINDS, kind)
    return {"action": _word(ACTIONS, record.action), "door": _word(DOORS, record.door),
            "outcome": _word(OUTCOMES, record.outcome),
            "role": _word({**ROLES, **SYSTEM_ROLES}, record.role),
            "what": what}


def choices(table: dict[str, Any], codes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Return (code, words) pairs for a filter's options."""
    return [(code, _word(table, code)) for code in codes]
