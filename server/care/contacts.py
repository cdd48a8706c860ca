"""Whom a patient calls: the organisations monitoring and treating them, with phone numbers."""

from __future__ import annotations

from sqlmodel import Session
from telekol.server.care.episodes import current_episode
from telekol.server.models import Organization

Contact = dict[str, str | None]  # {"name": ..., "phone": E.164 or None}


def team_contacts(session: Session, patient_id: str) -> dict[str, Contact]:
    """Return the current episode's "monitoring" and "treatment" contacts ({} without one)."""
    episode = current_episode(session, patient_id)
    if episode is None:
        return {}
    found = {part: session.get(Organization, org_id) for part, org_id in (
        ("monitoring", episode.monitoring_org_id), ("treatment", episode.treatment_org_id))}
    return {part: {"name": org.name, "phone": org.phone} for part, org in found.items()
            if org is not None}


def monitoring_contact(session: Session, patient_id: str) -> Contact | None:
    """Return the organisation watching the patient's readings, whom they call first."""
    return team_contacts(session, patient_id).get("monitoring")
