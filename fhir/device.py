"""Build a FHIR R4 Device for a home measuring device (pure)."""

from __future__ import annotations

from typing import Any

from telekol.fhir.validation import validate_resource

# Placeholder canonical owned by the TeleKOL project: the device's MQTT identity.
DEVICE_ID_SYSTEM = "https://telekol.dk/fhir/sid/device-id"


def device_resource(
    *,
    device_id: str,
    patient_id: str | None,
    model: str | None,
    serial: str | None,
    kind: str,
) -> dict[str, Any]:
    """Return a validated Device identified by its TeleKOL device id."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id,
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": device_id}],
        "status": "active",
        "type": {"text": kind},
    }
    if model:
        resource["deviceName"] = [{"name": model, "type": "model-name"}]
    if serial:
        resource["serialNumber"] = serial
    if patient_id is not None:
        resource["patient"] = {"reference": f"Patient/{patient_id}"}
    return validate_resource(resource)
