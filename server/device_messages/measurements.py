"""Parse and validate one MQTT measurements payload (contract §3) into frozen values.

Pure: no I/O, and it never raises for any payload. Every object yields either a
`Measurement` or a `Rejection` listing every problem found, each an English sentence
naming the field. The shared envelope (size, JSON, msg_id, taken_at) is checked by
`envelope`; readings by `readings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telekol.server.device_messages.envelope import (
    MAX_OBJECTS,
    MAX_PAYLOAD_BYTES,
    MSG_ID_RE,
    Rejection,
    check_envelope,
    echo,
    is_text,
    parse_payload,
)
from telekol.server.device_messages.readings import Reading, finite_number, parse_readings

__all__ = ["MAX_OBJECTS", "MAX_PAYLOAD_BYTES", "MSG_ID_RE", "DeviceInfo", "Measurement",
           "Reading", "Rejection", "parse_measurements"]

_DEVICE_TEXT_FIELDS = ("model", "firmware", "serial")


@dataclass(frozen=True)
class DeviceInfo:
    """Optional metadata a device reports about itself."""

    model: str | None
    firmware: str | None
    battery: float | None
    serial: str | None


@dataclass(frozen=True)
class Measurement:
    """One valid measurement object, readings in canonical units."""

    msg_id: str
    taken_at: datetime
    taken_at_text: str
    readings: tuple[Reading, ...]
    device: DeviceInfo | None
    raw: str


def parse_measurements(raw: bytes, received_at: datetime) -> list[Measurement | Rejection]:
    """Parse a payload into one Measurement or Rejection per object, never raising."""
    return parse_payload(raw, received_at, _parse_object, "measurement object")


def _parse_object(obj: dict[str, Any], received_at: datetime, raw: str) -> Measurement | Rejection:
    errors: list[str] = []
    envelope = check_envelope(obj, received_at, errors)
    if "readings" not in obj:
        errors.append("readings is required")
    readings = parse_readings(obj.get("readings"), errors) if "readings" in obj else ()
    device = _parse_device(obj.get("device"), errors)
    if errors or envelope is None:
        return Rejection(echo(obj.get("msg_id")), tuple(errors), raw)
    return Measurement(envelope.msg_id, envelope.taken_at, envelope.taken_at_text, readings,
                       device, raw)


def _parse_device(device: Any, errors: list[str]) -> DeviceInfo | None:
    if device is None:
        return None
    if not isinstance(device, dict):
        errors.append("device must be an object")
        return None
    for key in _DEVICE_TEXT_FIELDS:
        value = device.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= 128):
            errors.append(f"device.{key} must be a string of at most 128 characters")
        elif value is not None and not is_text(value):
            errors.append(f"device.{key} must be printable Unicode text")
    battery = device.get("battery")
    if battery is not None:
        battery = finite_number(battery)
        if battery is None or not 0 <= battery <= 100:
            errors.append("device.battery must be a number from 0 to 100")
    return DeviceInfo(device.get("model"), device.get("firmware"), battery, device.get("serial"))
