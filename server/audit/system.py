"""Audit entries for what the platform does by itself: devices' stored batches, provisioning
of devices and the scheduler's decisions. They go into the same keyed chain as people's
accesses (server/audit/log.py), so a database writer cannot add, hide or alter them either."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from telekol.server.audit.log import Actor, Entry
from telekol.server.models import Alert

DEVICE_DOOR = "mqtt"
SCHEDULER = Actor(username="telekol-scheduler", role="system")
_DETAIL = 500


def device_actor(device_id: str) -> Actor:
    """Return the actor for a device: its id as the username, role `device`."""
    return Actor(username=device_id, role="device")


def stored_batch(stored: Mapping[tuple[str, str], Sequence[str]]) -> list[Entry]:
    """Return one `create` entry per (device, patient) of a stored batch, naming its msg_ids."""
    return [Entry(device_actor(device_id), patient_id, "create",
                  f"Observation?device={device_id}", DEVICE_DOOR,
                  detail=_counted(msg_ids, "stored"))
            for (device_id, patient_id), msg_ids in sorted(stored.items())]


def provisioned(device_id: str, patient_id: str | None, new: bool, previous: str | None,
                actor: Actor) -> Entry:
    """Return the entry for a device created or re-keyed, and whom it now belongs to."""
    done = "created" if new else "re-keyed"
    if previous is not None and previous != patient_id:
        detail = f"{done}, moved from {previous} to {patient_id or 'nobody'}"
    else:
        detail = f"{done}, assigned to {patient_id}" if patient_id else f"{done}, unassigned"
    return Entry(actor, patient_id or previous, "provision", f"Device/{device_id}", "cli",
                 detail=detail)


def scheduler_decision(alert: Alert, action: str, what: str) -> Entry:
    """Return the entry for an alert the scheduler raised, updated, reopened or resolved."""
    return Entry(SCHEDULER, alert.patient_id, action, f"Alert/{alert.id}", "scheduler",
                 detail=f"{what}: {alert.rule} {alert.severity}: {alert.reason}"[:_DETAIL])


def _counted(names: Iterable[str], what: str) -> str:
    names = list(names)
    text = f"{len(names)} {what}: " + ",".join(names)
    if len(text) <= _DETAIL:
        return text
    return text[:_DETAIL - 8].rsplit(",", 1)[0] + ",+more"
