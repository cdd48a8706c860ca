"""The GP's inbox: a red alert is put in every treating organisation's inbox, once per alert.

`after_change` is the hook every writer of alerts calls in its own transaction (ingest,
manual entry, scheduler): it records the created/updated transition and, when the alert
is red, adds the InboxItem rows. The unique (organization_id, alert_id) constraint keeps
it once per alert also across processes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select
from telekol.server import events, metrics
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.care.access import visible_patient_ids
from telekol.server.models import Alert, CareTeamMember, InboxItem, Patient, User

INBOX_ROLE = "treatment"  # the GP on the care team
MAX_ITEMS = 200


class ItemNotFound(LookupError):
    """No inbox item with that id in the user's organisation (404)."""


def after_change(session: Session, alert: Alert, action: str, actor: str, now: datetime,
                 user_id: int | None = None) -> None:
    """Audit a created/updated alert and inform the GP when it is red (alert has an id)."""
    metrics.alert_written(session, alert.severity, action)  # counted once committed
    alert_lifecycle.record(session, alert, action, actor, now, user_id,
                           f"{alert.severity}: {alert.reason}")
    if alert.severity == "red":
        notify_red(session, alert, now)


def notify_red(session: Session, alert: Alert, now: datetime) -> list[InboxItem]:
    """Add an inbox item for each treating organisation on the team that has none yet."""
    assert alert.id is not None
    treating = session.exec(select(CareTeamMember.organization_id).where(
        CareTeamMember.patient_id == alert.patient_id,
        CareTeamMember.role == INBOX_ROLE, col(CareTeamMember.sees_data).is_(True))).all()
    present = set(session.exec(select(InboxItem.organization_id).where(
        InboxItem.alert_id == alert.id)).all())
    added = [InboxItem(organization_id=org, alert_id=alert.id, created_at=now)
             for org in sorted(set(treating) - present)]
    session.add_all(added)
    return added


def items(session: Session, user: User) -> list[dict[str, Any]]:
    """Return the user's organisation's inbox, newest first, each with its alert."""
    rows = session.exec(_mine(user).order_by(col(InboxItem.created_at).desc(),
                                             col(InboxItem.id).desc()).limit(MAX_ITEMS)).all()
    return [render(session, row) for row in rows]


def unread(session: Session, user: User) -> int:
    """Return how many of the organisation's inbox items nobody has read."""
    query = _mine(user).where(col(InboxItem.read_at).is_(None)).subquery()
    return int(session.exec(select(func.count()).select_from(query)).one())


def mark_read(session: Session, user: User, item_id: int, now: datetime) -> InboxItem:
    """Mark an item read (the first reading counts); unknown or foreign items are absent."""
    row = session.exec(_mine(user).where(col(InboxItem.id) == item_id)).first()
    if row is None:
        raise ItemNotFound(item_id)
    if row.read_at is None:
        row.read_at = now
        session.add(row)
    return row


def render(session: Session, row: InboxItem) -> dict[str, Any]:
    """Render an inbox item with its alert payload."""
    alert = session.get(Alert, row.alert_id)
    assert alert is not None
    patient = session.get(Patient, alert.patient_id)
    assert patient is not None
    return {"id": row.id, "created_at": events.instant(row.created_at),
            "read": row.read_at is not None, "read_at": events.instant(row.read_at),
            "alert": alert_lifecycle.alert_view(session, alert, patient)}


def _mine(user: User) -> Any:
    query = select(InboxItem).join(Alert, col(Alert.id) == col(InboxItem.alert_id))
    if user.role in ("patient", "admin") or user.organization_id is None:
        return query.where(col(InboxItem.id) == -1)
    return query.where(col(InboxItem.organization_id) == user.organization_id,
                       col(Alert.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
