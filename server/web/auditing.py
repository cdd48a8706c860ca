"""What a request did to patient data, noted by the views and written to the audit log.

Views call `note(...)` once they know which patients a request touches; the audit hook
(server/audit.py, wired in server/web/__init__.py) writes one chained record per patient
after the response is made, with the outcome taken from the HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import g


@dataclass(frozen=True)
class Noted:
    """One access a request made: to which patients, what, and to which resource."""

    patient_ids: tuple[str | None, ...]
    action: str  # read | search | create | update | delete | export
    resource: str  # e.g. "Patient/abc", "Observation?patient=abc", "CarePlan/abc"
    detail: str = ""


def note(patient_ids: str | Iterable[str] | None, action: str, resource: str, *,
         detail: str = "") -> None:
    """Note that this request does `action` on `resource` for these patients.

    `None` notes an access that concerns no single patient (an administrator's search).
    """
    if patient_ids is None or isinstance(patient_ids, str):
        ids: tuple[str | None, ...] = (patient_ids,)
    else:
        ids = tuple(dict.fromkeys(patient_ids))
    g.setdefault("audit_notes", []).append(Noted(ids, action, resource, detail))


def noted() -> list[Noted]:
    """Return what this request has noted so far."""
    return list(g.get("audit_notes", []))
