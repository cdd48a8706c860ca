"""Pausing monitoring for a period (holiday, admission): nothing is expected of the patient.

While a pause runs the scheduler raises no missing-measurement or device alerts for the
patient; readings that do arrive are still triaged. A pause is never deleted: cancelling
sets `cancelled_at`, which also ends a running pause at that moment.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select
from telekol.server.care.episodes import Conflict, EpisodeError, NotFound, require
from telekol.server.db import utcnow
from telekol.server.models import MonitoringPause, User

# Operational default (docs/care-team.md): a longer absence is a reason to finish the
# episode or to review the care plan, not to pause.
MAX_PAUSE = timedelta(days=90)
MAX_REASON = 500
_INSTANT_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})\Z")


def parse_instant(raw: Any, name: str) -> datetime:
    """Return the aware datetime an RFC 3339 timestamp with offset names."""
    if not isinstance(raw, str) or not _INSTANT_RE.match(raw.strip()):
        raise EpisodeError(f"{name} must be an RFC 3339 timestamp with offset, "
                           "e.g. 2026-12-01T08:00:00+01:00")
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EpisodeError(f"{name} {raw!r} is not a real moment") from None


def _running(at: datetime) -> Any:
    return (col(MonitoringPause.starts_at) <= at, col(MonitoringPause.ends_at) > at,
            or_(col(MonitoringPause.cancelled_at).is_(None),
                col(MonitoringPause.cancelled_at) > at))


def paused_patient_ids(session: Session, at: datetime) -> set[str]:
    """Return the patients whose monitoring is paused at `at`."""
    return set(session.exec(select(MonitoringPause.patient_id).where(*_running(at))))


def active_pause(session: Session, patient_id: str, at: datetime) -> MonitoringPause | None:
    """Return the patient's pause running at `at`, if any."""
    return session.exec(select(MonitoringPause).where(
        MonitoringPause.patient_id == patient_id, *_running(at))).first()


def pauses_of(session: Session, patient_id: str) -> list[MonitoringPause]:
    """Return the patient's pauses, the latest start first."""
    return list(session.exec(select(MonitoringPause).where(
        MonitoringPause.patient_id == patient_id)
        .order_by(col(MonitoringPause.starts_at).desc(), col(MonitoringPause.id).desc())))


def effective_end(pause: MonitoringPause) -> datetime:
    """Return when the pause ends or ended (cancelling ends it early)."""
    if pause.cancelled_at is not None and pause.cancelled_at < pause.ends_at:
        return max(pause.cancelled_at, pause.starts_at)
    return pause.ends_at


def status(pause: MonitoringPause, at: datetime) -> str:
    """Return planned, active, ended or cancelled (cancelled before it began) at `at`."""
    end = effective_end(pause)
    if end <= pause.starts_at:
        return "cancelled"
    if at < pause.starts_at:
        return "planned"
    return "active" if at < end else "ended"


def resumed_at(session: Session, at: datetime) -> dict[str, datetime]:
    """Return, per patient, when their latest pause of the last two days ended (before `at`).

    Due times inside a pause must not turn into missing-measurement alerts once it ends.
    """
    rows = session.exec(select(MonitoringPause).where(
        col(MonitoringPause.starts_at) <= at,
        col(MonitoringPause.ends_at) >= at - timedelta(days=2)))
    found: dict[str, datetime] = {}
    for pause in rows:
        end = effective_end(pause)
        if pause.starts_at < end <= at:
            found[pause.patient_id] = max(end, found.get(pause.patient_id, end))
    return found


def start_pause(session: Session, user: User, patient_id: str, starts_at: datetime,
                ends_at: datetime, reason: Any, at: datetime | None = None) -> MonitoringPause:
    """Pause the patient's monitoring from `starts_at` to `ends_at` with a reason."""
    require(session, user, "pause", patient_id)
    at = at or utcnow()
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise EpisodeError("start and end need a UTC offset")
    if ends_at <= starts_at:
        raise EpisodeError("the pause must end after it starts")
    if ends_at - starts_at > MAX_PAUSE:
        raise EpisodeError(f"a pause lasts at most {MAX_PAUSE.days} days")
    if ends_at <= at:
        raise EpisodeError("the pause would already be over")
    if not isinstance(reason, str) or not reason.strip():
        raise EpisodeError("a reason is required")
    if len(reason.strip()) > MAX_REASON:
        raise EpisodeError(f"the reason must be at most {MAX_REASON} characters")
    for other in pauses_of(session, patient_id):
        if other.starts_at < ends_at and starts_at < effective_end(other) \
                and status(other, at) != "cancelled":
            raise Conflict("the patient already has a pause in that period")
    pause = MonitoringPause(patient_id=patient_id, starts_at=starts_at, ends_at=ends_at,
                            reason=reason.strip(), created_by=user.id, created_at=at)
    session.add(pause)
    session.flush()
    return pause


def cancel_pause(session: Session, user: User, pause_id: int,
                 at: datetime | None = None) -> MonitoringPause:
    """Cancel a planned or running pause; monitoring resumes at once."""
    at = at or utcnow()
    pause = session.get(MonitoringPause, pause_id)
    if pause is None:
        raise NotFound(f"pause {pause_id} is not known")
    try:
        require(session, user, "pause", pause.patient_id)
    except NotFound:
        raise NotFound(f"pause {pause_id} is not known") from None
    if status(pause, at) not in ("planned", "active"):
        raise Conflict(f"the pause is already {status(pause, at)}")
    pause.cancelled_at = at
    session.add(pause)
    session.flush()
    return pause

