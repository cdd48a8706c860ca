"""Build the FHIR R4 Task of an alert (pure): the clinicians' work item for one alert.

Modelled on the national telemedicine infrastructure, whose triage creates a Task with
priority asap (red), urgent (yellow) or routine (docs/fhir.md, "Alerts as Task").
"""

from __future__ import annotations

from typing import Any

from telekol.fhir.validation import validate_resource

# Placeholder canonical owned by the TeleKOL project: the id of the rule that raised an alert
# (server/alerts/rules, docs/alerting.md), e.g. `spo2-threshold`.
ALERT_RULE_SYSTEM = "https://telekol.dk/fhir/CodeSystem/alert-rule"
TASK_STATUS = {"open": "requested", "acknowledged": "in-progress", "snoozed": "on-hold",
               "resolved": "completed"}
TASK_PRIORITY = {"red": "asap", "yellow": "urgent", "blue": "routine"}
TASK_ID_PREFIX = "alert-"


def task_id(alert_id: int) -> str:
    """Return the Task id of an alert."""
    return f"{TASK_ID_PREFIX}{alert_id}"


def alert_id(ident: str) -> int | None:
    """Return the alert id a Task id names, or None when it names none."""
    digits = ident.removeprefix(TASK_ID_PREFIX)
    if not ident.startswith(TASK_ID_PREFIX) or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


def task_resource(*, alert_id: int, patient_id: str, status: str, severity: str, rule: str,
                  reason: str, observation_id: str | None, owner_org_id: str | None,
                  authored_on: str, last_modified: str, count: int, escalation_level: int,
                  resolved_at: str | None = None, resolved_automatically: bool = False,
                  note: str | None = None, note_author_id: str | None = None,
                  note_time: str | None = None) -> dict[str, Any]:
    """Return a validated Task for an alert; times are FHIR instants.

    `observation_id` is the latest observation that raised or repeated the alert (missing
    for alerts about absent measurements); `owner_org_id` the organisation that must act.
    """
    if status not in TASK_STATUS or severity not in TASK_PRIORITY:
        raise ValueError(f"alert {alert_id}: no Task mapping for status {status!r} "
                         f"or severity {severity!r}")
    task: dict[str, Any] = {
        "resourceType": "Task", "id": task_id(alert_id),
        "status": TASK_STATUS[status],
        "businessStatus": {"text": _business_status(severity, count, escalation_level,
                                                    status, resolved_automatically)},
        "intent": "order", "priority": TASK_PRIORITY[severity],
        "code": {"coding": [{"system": ALERT_RULE_SYSTEM, "code": rule}], "text": rule},
        "description": reason,
        "for": {"reference": f"Patient/{patient_id}"},
        "executionPeriod": {"start": authored_on, **({"end": resolved_at}
                                                      if status == "resolved" and resolved_at
                                                      else {})},
        "authoredOn": authored_on, "lastModified": last_modified,
    }
    if observation_id:
        task["focus"] = {"reference": f"Observation/{observation_id}"}
    if owner_org_id:
        task["owner"] = {"reference": f"Organization/{owner_org_id}"}
    if note:
        annotation: dict[str, Any] = {"text": note}
        if note_author_id:
            annotation["authorReference"] = {"reference": f"Practitioner/{note_author_id}"}
        if note_time:
            annotation["time"] = note_time
        task["note"] = [annotation]
    return validate_resource(task)


def _business_status(severity: str, count: int, level: int, status: str, auto: bool) -> str:
    parts = [f"{severity} alert", "1 occurrence" if count == 1 else f"{count} occurrences",
             f"escalation level {level}"]
    if status == "resolved":
        parts.append("resolved automatically" if auto else "resolved by a clinician")
    return ", ".join(parts)
