"""Provision devices: create credentials, store their hash, and let the broker pick them up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from telekol.server.audit.log import Actor, append
from telekol.server.audit.system import provisioned
from telekol.server.broker import mosquitto as broker
from telekol.server.config import Settings
from telekol.server.device_messages.topics import DEVICE_ID_RE
from telekol.server.models import Device, Patient

RESERVED_PREFIX = "telekol-"  # service accounts live here


class ProvisioningError(ValueError):
    """A device cannot be provisioned as asked."""


@dataclass(frozen=True)
class DeviceCredentials:
    """What a device maker needs to connect: shown once, only the hash is kept."""

    device_id: str
    mqtt_username: str
    mqtt_password: str
    patient: str | None


def provision_device(session: Session, *, patient_id: str | None, device_id: str | None = None,
                     password: str | None = None, kind: str = "hub",
                     model: str | None = None, actor: Actor | None = None) -> DeviceCredentials:
    """Create (or re-key) a device for a patient and return its credentials.

    With an `actor`, the act goes into the audit chain in the same transaction.
    """
    device_id = device_id or f"dev-{secrets.token_hex(6)}"
    if not DEVICE_ID_RE.match(device_id) or device_id.startswith(RESERVED_PREFIX):
        raise ProvisioningError(
            f"device id {device_id!r} must be 1-64 of A-Z a-z 0-9 . - and not start with "
            f"{RESERVED_PREFIX!r}")
    if patient_id is not None and session.get(Patient, patient_id) is None:
        raise ProvisioningError(f"patient {patient_id!r} does not exist")
    password = password or secrets.token_urlsafe(18)
    existing = session.get(Device, device_id)
    device = existing or Device(id=device_id, mqtt_password_hash="")
    previous = existing.patient_id if existing is not None else None
    device.patient_id = patient_id
    device.kind = kind
    device.model = model or device.model
    device.mqtt_password_hash = broker.hash_password(password)
    session.add(device)
    if actor is not None:
        append(session, [provisioned(device_id, patient_id, existing is None, previous, actor)])
    return DeviceCredentials(device_id, device_id, password, patient_id)


def sync_broker(engine: Engine, settings: Settings) -> bool:
    """Rewrite the broker's password file from the database and reload a running broker."""
    with Session(engine) as session:
        rows = session.exec(select(Device.id, Device.mqtt_password_hash)).all()
    broker.write_password_file(settings, [(row[0], row[1]) for row in rows])
    return broker.reload_running_broker(settings)
