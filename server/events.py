"""Events the gateway hands to web servers: small JSON on an internal MQTT topic.

The gateway commits first, then publishes one message per batch on EVENTS_TOPIC;
every web-server process subscribes and fans the events out over Socket.IO to the
rooms listed in each event. Alerts are already stored, so a screen that missed an
event fetches it from /api/alerts?since=.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from telekol.server.models import Alert, Observation, Patient

EVENTS_TOPIC = "telekol/v1/internal/events"


def rooms_for(patient_id: str, organization_ids: list[str]) -> list[str]:
    """Return the Socket.IO rooms allowed to see this patient's events."""
    return [f"org:{org}" for org in sorted(organization_ids)] + [f"patient:{patient_id}"]


def instant(moment: Any) -> str | None:
    """Format an aware datetime as an RFC 3339 UTC instant."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def patient_ref(patient: Patient) -> dict[str, str]:
    """Return the patient as events and the API show it."""
    return {"id": patient.id, "display": patient.display}


def alert_payload(alert: Alert, patient: Patient) -> dict[str, Any]:
    """Render an alert as the contract's `alert` event and /api/alerts item."""
    return {
        "id": alert.id, "patient": patient_ref(patient), "severity": alert.severity,
        "status": alert.status, "reason": alert.reason,
        # The reading the (latest) reason is about; a repeat moves it to the newest reading.
        "observation": alert.last_observation_id or alert.observation_id,
        "rule": alert.rule, "details": alert.details, "created_at": instant(alert.created_at),
        "updated_at": instant(alert.updated_at),
        "acknowledged_at": instant(alert.acknowledged_at), "acknowledged_by": None,
        "resolved_at": instant(alert.resolved_at), "resolved_by": None, "note": alert.note,
        "count": alert.count, "first_observation": alert.observation_id,
        # The reading that set the severity (a repeat only moves `reason`/`details`).
        "severity_reason": alert.severity_reason or alert.reason,
        "severity_details": alert.severity_details or alert.details,
        "severity_observation": alert.severity_observation_id or alert.observation_id,
        "severity_at": instant(alert.severity_at), "last_at": instant(alert.last_at),
        "snoozed_until": instant(alert.snoozed_until), "snooze_reason": alert.snooze_reason,
        "patient_message": alert.patient_message, "resolution": alert.resolution,
        "responsible": None,  # filled in by alert_lifecycle.alert_view (needs the care team)
        "escalation_level": alert.escalation_level, "escalated_to": alert.escalated_to,
        "escalated_at": instant(alert.escalated_at),
    }


def observation_payload(observation: Observation, patient: Patient) -> dict[str, Any]:
    """Render a stored observation as a compact `observation` event."""
    return observation_view({"id": observation.id, "type_code": observation.type_code,
                             "device_id": observation.device_id, "msg_id": observation.msg_id,
                             "severity": observation.severity},
                            orjson.loads(observation.resource), patient)


def observation_view(row: Mapping[str, Any], resource: Mapping[str, Any],
                     patient: Patient) -> dict[str, Any]:
    """Render an observation's columns and FHIR resource as a compact `observation` event."""
    payload: dict[str, Any] = {
        "id": row["id"], "patient": patient_ref(patient), "code": row["type_code"],
        "effective": resource.get("effectiveDateTime"), "device": row["device_id"],
        "msg_id": row["msg_id"], "severity": row["severity"],
    }
    if "valueInteger" in resource:  # a questionnaire score
        payload["value"] = resource["valueInteger"]
    if "valueQuantity" in resource:
        payload["value"] = resource["valueQuantity"]["value"]
        payload["unit"] = resource["valueQuantity"]["code"]
    for component in resource.get("component", []):
        key = "systolic" if component["code"]["coding"][0]["code"] == "8480-6" else "diastolic"
        payload[key] = component["valueQuantity"]["value"]
        payload["unit"] = component["valueQuantity"]["code"]
    return payload


def encode(batch: list[dict[str, Any]]) -> bytes:
    """Encode a batch of events for the internal topic."""
    return orjson.dumps({"events": batch})


def decode(payload: bytes) -> list[dict[str, Any]]:
    """Decode a batch published by a gateway; malformed input yields nothing."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    batch = body.get("events") if isinstance(body, dict) else None
    return [e for e in batch or [] if isinstance(e, dict) and "type" in e and "data" in e]
