"""MQTT topic names of the device interface (contract §3), parsed by one regex."""

from __future__ import annotations

import re
from dataclasses import dataclass

# \A and \Z (not ^ and $) so that a trailing newline never slips through `match`.
DEVICE_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,63}\Z")
TOPIC_RE = re.compile(
    r"\Atelekol/v1/devices/(?P<device_id>[A-Za-z0-9][A-Za-z0-9.-]{0,63})"
    r"/(?P<kind>measurements|questionnaire-responses|status)\Z"
)
MEASUREMENTS_SUBSCRIPTION = "telekol/v1/devices/+/measurements"
QUESTIONNAIRE_RESPONSES_SUBSCRIPTION = "telekol/v1/devices/+/questionnaire-responses"


@dataclass(frozen=True)
class DeviceTopic:
    """A topic that names one device and one kind of message."""

    device_id: str
    kind: str


def parse_topic(topic: str) -> DeviceTopic | None:
    """Split a device topic into device id and kind, or return None if it is not one."""
    found = TOPIC_RE.match(topic)
    if found is None:
        return None
    return DeviceTopic(found["device_id"], found["kind"])


def _topic(device_id: str, kind: str) -> str:
    if not DEVICE_ID_RE.match(device_id):
        raise ValueError(f"{device_id!r} is not a valid device id")
    return f"telekol/v1/devices/{device_id}/{kind}"


def status_topic(device_id: str) -> str:
    """Return the topic the platform answers a device on."""
    return _topic(device_id, "status")


def measurements_topic(device_id: str) -> str:
    """Return the topic a device publishes its measurements to."""
    return _topic(device_id, "measurements")


def questionnaire_responses_topic(device_id: str) -> str:
    """Return the topic a device publishes questionnaire responses to."""
    return _topic(device_id, "questionnaire-responses")
