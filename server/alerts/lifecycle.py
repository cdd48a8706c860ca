"""The alert workflow: open -> acknowledged | snoozed -> resolved, with who, when and why.

Only nurses, doctors and GPs (`access.acts_on_alerts`) of the responsible organisation
(escalated_to, else the care team's monitoring organisation) act on an alert; the rest of
the care team sees it read-only. Every
transition writes an AlertTransition row in the caller's transaction (`record`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.care.access import acts_on_alerts, team_organizations, visible_patient
from telekol.server.db import utcnow
from telekol.server.models import (
    Alert,
    AlertTransition,
    CareTeamMember,
    Organization,
    Patient,
    User,
)

MAX_NOTE = 1000
MAX_SNOOZE_REASON = 500
MAX_SNOOZE_MINUTES = 1440
UNRESOLVED = ("open", "acknowledged", "snoozed")


class AlertNotFound(LookupError):
    """No alert with that id is visible to the user (the door answers 404)."""


class TransitionRefused(ValueError):
    """The alert cannot make that transition, or the user may not make it (409)."""


class NotResponsible(TransitionRefused):
    """The user sees the alert but may not act on it (403): their organisation is not the
    responsible one, or their role (a secretary) does not act on alerts."""


class InvalidRequest(ValueError):
    """The transition's parameters are malformed (400)."""


def record(session: Session, alert: Alert, action: str, actor: str, at: datetime,
           user_id: int | None = None, note: str | None = None) -> AlertTransition:
    """Add one audit row for `alert` (which must have an id) to the session's transaction."""
    assert alert.id is not None
    row = AlertTransition(alert_id=alert.id, at=at, actor=actor, actor_user_id=user_id,
                          action=action, note=(note or None) and note[:MAX_NOTE])
    session.add(row)
    return row


def acknowledge(session: Session, user: User, alert_id: int, note: str | None = None,
                clock: Callable[[], datetime] = utcnow,
                patient_message: str | None = None) -> Alert:
    """Mark an open or snoozed alert acknowledged by `user`; repeating it changes nothing."""
    alert = _editable(session, user, alert_id)
    if alert.status == "resolved":
        raise TransitionRefused("the alert is already resolved")
    if alert.status in ("open", "snoozed"):
        now = clock()
        alert.status, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", user.id, now
        alert.note = _clean(note)
        alert.patient_message = _clean(patient_message)
        alert.snoozed_until = alert.snooze_reason = None
        alert.updated_at = now
        record(session, alert, "acknowledged", "user", now, user.id, alert.note)
    return alert


def acknowledge_all(session: Session, user: User, patient_id: str, note: str | None = None,
                    clock: Callable[[], datetime] = utcnow,
                    patient_message: str | None = None) -> list[Alert]:
    """Acknowledge every open or snoozed alert of a patient that the user's organisation
    must act on, with one note; return them (none: nothing to acknowledge)."""
    if visible_patient(session, user, patient_id) is None:
        raise AlertNotFound(patient_id)
    if not acts_on_alerts(user):
        raise NotResponsible("only nurses, doctors and GPs on the care team act on alerts")
    ids = session.exec(select(Alert.id).where(
        Alert.patient_id == patient_id, col(Alert.status).in_(("open", "snoozed")))).all()
    done = []
    for alert_id in ids:
        try:
            done.append(acknowledge(session, user, alert_id or 0, note, clock, patient_message))
        except NotResponsible:
            continue  # another organisation's to act on: left for them
    return done


def resolve(session: Session, user: User, alert_id: int, note: str | None = None,
            clock: Callable[[], datetime] = utcnow) -> Alert:
    """Mark an alert resolved by `user` (acknowledging it too if nobody had)."""
    alert = _editable(session, user, alert_id)
    if alert.status != "resolved":
        now = clock()
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = user.id, now
        alert.status, alert.resolved_by, alert.resolved_at = "resolved", user.id, now
        alert.resolution = "manual"
        alert.snoozed_until = alert.snooze_reason = None
        alert.note = _clean(note) or alert.note
        alert.updated_at = now
        record(session, alert, "resolved", "user", now, user.id, _clean(note))
    return alert


def snooze(session: Session, user: User, alert_id: int, minutes: Any, reason: Any,
           clock: Callable[[], datetime] = utcnow) -> Alert:
    """Snooze an unresolved alert for `minutes` (1..1440) with a reason; the scheduler
    reopens it when the time has passed. Snoozing again replaces the time and reason."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            1 <= minutes <= MAX_SNOOZE_MINUTES):
        raise InvalidRequest(f"minutes must be a whole number from 1 to {MAX_SNOOZE_MINUTES}")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_SNOOZE_REASON:
        raise InvalidRequest(f"reason must be a non-empty string of at most "
                             f"{MAX_SNOOZE_REASON} characters")
    alert = _editable(session, user, alert_id)
    if alert.status == "resolved":
        raise TransitionRefused("the alert is already resolved")
    now = clock()
    alert.status, alert.snoozed_until = "snoozed", now + timedelta(minutes=minutes)
    alert.snooze_reason = reason.strip()
    alert.updated_at = now
    record(session, alert, "snoozed", "user", now, user.id,
           f"{minutes} min: {alert.snooze_reason}")
    return alert


def responsible(session: Session, alert: Alert) -> dict[str, str] | None:
    """Return {"id", "name"} of the organisation that must act on `alert`: the one it was
    escalated to, else the care team's monitoring organisation, else the first on the team."""
    org_id = alert.escalated_to
    if org_id is None:
        team = sorted(session.exec(select(CareTeamMember).where(
            CareTeamMember.patient_id == alert.patient_id)).all(),
            key=lambda m: (m.role != "monitoring", m.organization_id))
        org_id = team[0].organization_id if team else None
    org = session.get(Organization, org_id) if org_id else None
    return {"id": org.id, "name": org.name} if org else None


def live_event(session: Session, alert: Alert) -> dict:
    """Return the internal event announcing an alert's new state to its care team."""
    patient = session.get(Patient, alert.patient_id)
    assert patient is not None
    orgs = team_organizations(session, [alert.patient_id]).get(alert.patient_id, [])
    return {"type": "alert", "rooms": events.rooms_for(patient.id, orgs),
            "data": alert_view(session, alert, patient)}


def alert_view(session: Session, alert: Alert, patient: Patient) -> dict:
    """Render an alert with who acknowledged and resolved it and who must act on it."""
    payload = events.alert_payload(alert, patient)
    payload["acknowledged_by"] = _name(session, alert.acknowledged_by)
    payload["acknowledged_at"] = events.instant(alert.acknowledged_at)
    payload["resolved_by"] = _name(session, alert.resolved_by)
    payload["resolved_at"] = events.instant(alert.resolved_at)
    payload["note"] = alert.note
    payload["responsible"] = responsible(session, alert)
    return payload


def history(session: Session, user: User, alert_id: int) -> list[dict[str, Any]]:
    """Return the alert's transitions, oldest first, for a user who may see the alert."""
    alert = session.get(Alert, alert_id)
    if alert is None or visible_patient(session, user, alert.patient_id) is None:
        raise AlertNotFound(alert_id)
    rows = session.exec(select(AlertTransition).where(AlertTransition.alert_id == alert_id)
                        .order_by(col(AlertTransition.at), col(AlertTransition.id))).all()
    return [{"id": r.id, "at": events.instant(r.at), "action": r.action, "actor": r.actor,
             "actor_user_id": r.actor_user_id, "actor_name": _name(session, r.actor_user_id),
             "note": r.note} for r in rows]


def _editable(session: Session, user: User, alert_id: int) -> Alert:
    alert = session.exec(select(Alert).where(col(Alert.id) == alert_id)).first()
    if alert is None or visible_patient(session, user, alert.patient_id) is None:
        raise AlertNotFound(alert_id)
    if not acts_on_alerts(user):
        raise NotResponsible("only nurses, doctors and GPs on the care team act on alerts")
    owner = responsible(session, alert)
    if owner is None or owner["id"] != user.organization_id:
        name = owner["name"] if owner else "the responsible organisation"
        raise NotResponsible(f"{name} is responsible for this alert; "
                             "other care-team members see it read-only")
    return alert


def _name(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id is not None else None
    return user.display_name if user else None


def _clean(note: str | None) -> str | None:
    text = (note or "").strip()
    return text[:MAX_NOTE] or None
