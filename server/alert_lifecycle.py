"""Acknowledge and resolve alerts: open -> acknowledged -> resolved, with who and when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.access import visible_patient
from telekol.server.db import utcnow
from telekol.server.models import Alert, CareTeamMember, Patient, User

CLINICAL_ROLES = frozenset({"nurse", "doctor", "gp", "secretary"})
MAX_NOTE = 1000


class AlertNotFound(LookupError):
    """No alert with that id is visible to the user (the door answers 404)."""


class TransitionRefused(ValueError):
    """The alert cannot make that transition, or the user may not make it."""


def acknowledge(session: Session, user: User, alert_id: int, note: str | None = None,
                clock: Callable[[], datetime] = utcnow) -> Alert:
    """Mark an open alert acknowledged by `user`; repeating it changes nothing."""
    alert = _editable(session, user, alert_id)
    if alert.status == "resolved":
        raise TransitionRefused("the alert is already resolved")
    if alert.status == "open":
        alert.status, alert.acknowledged_by = "acknowledged", user.id
        alert.acknowledged_at = clock()
        alert.note = _clean(note)
        alert.updated_at = alert.acknowledged_at
    return alert


def resolve(session: Session, user: User, alert_id: int, note: str | None = None,
            clock: Callable[[], datetime] = utcnow) -> Alert:
    """Mark an alert resolved by `user` (acknowledging it too if nobody had)."""
    alert = _editable(session, user, alert_id)
    if alert.status != "resolved":
        now = clock()
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = user.id, now
        alert.status, alert.resolved_by, alert.resolved_at = "resolved", user.id, now
        alert.note = _clean(note) or alert.note
        alert.updated_at = now
    return alert


def live_event(session: Session, alert: Alert) -> dict:
    """Return the internal event announcing an alert's new state to its care team."""
    patient = session.get(Patient, alert.patient_id)
    assert patient is not None
    orgs = list(session.exec(select(CareTeamMember.organization_id).where(
        CareTeamMember.patient_id == alert.patient_id)))
    return {"type": "alert", "rooms": events.rooms_for(patient.id, orgs),
            "data": alert_view(session, alert, patient)}


def alert_view(session: Session, alert: Alert, patient: Patient) -> dict:
    """Render an alert with the names of who acknowledged and resolved it."""
    payload = events.alert_payload(alert, patient)
    payload["acknowledged_by"] = _name(session, alert.acknowledged_by)
    payload["acknowledged_at"] = events.instant(alert.acknowledged_at)
    payload["resolved_by"] = _name(session, alert.resolved_by)
    payload["resolved_at"] = events.instant(alert.resolved_at)
    payload["note"] = alert.note
    return payload


def _editable(session: Session, user: User, alert_id: int) -> Alert:
    alert = session.exec(select(Alert).where(col(Alert.id) == alert_id)).first()
    if alert is None or visible_patient(session, user, alert.patient_id) is None:
        raise AlertNotFound(alert_id)
    if user.role not in CLINICAL_ROLES:
        raise TransitionRefused("only clinicians on the care team act on alerts")
    return alert


def _name(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id is not None else None
    return user.display_name if user else None


def _clean(note: str | None) -> str | None:
    text = (note or "").strip()
    return text[:MAX_NOTE] or None
