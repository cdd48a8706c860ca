"""Handing monitoring or treatment responsibility to another organisation.

The receiving organisation must accept: only then does the Episode's column move (in the
same transaction, guarded so two people deciding at once cannot both win) and
`episodes.refresh_access` bring the care team's roles and sight in line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.fhir.cpr import InvalidCPR, birth_date
from telekol.server.care.access import CLINICIANS
from telekol.server.care.episodes import (
    RESPONSIBILITIES,
    Conflict,
    EpisodeError,
    NotFound,
    NotPermitted,
    consent_in_force,
    current_episode,
    refresh_access,
    require,
)
from telekol.server.care.free_text import checked_text
from telekol.server.db import utcnow
from telekol.server.models import Episode, Handover, Organization, Patient, User

TREATING_KINDS = ("hospital", "gp")  # treatment responsibility needs doctors or GPs
HANDOVER_STATUSES = ("pending", "accepted", "rejected", "withdrawn")


def request_handover(session: Session, user: User, patient_id: str, responsibility: Any,
                     to_org_id: Any, reason: Any, at: datetime | None = None) -> Handover:
    """Ask another organisation to take over the responsibility the user's organisation holds."""
    require(session, user, "hand_over", patient_id)
    if responsibility not in RESPONSIBILITIES:
        raise EpisodeError(f"responsibility must be one of {', '.join(RESPONSIBILITIES)}")
    episode = current_episode(session, patient_id)
    if episode is None or _holder(episode, responsibility) != user.organization_id:
        raise NotPermitted(f"your organisation does not hold the {responsibility} "
                           "responsibility for this patient")
    holder = _holder(episode, responsibility)
    receiver = session.get(Organization, to_org_id) if isinstance(to_org_id, str) else None
    if receiver is None:
        raise EpisodeError(f"no organisation {to_org_id!r}")
    if receiver.id == holder:
        raise EpisodeError(f"{receiver.name} already holds the {responsibility} responsibility")
    if responsibility == "treatment" and receiver.kind not in TREATING_KINDS:
        raise EpisodeError("treatment responsibility can only go to a hospital department or "
                           "a GP clinic (someone there must be able to set thresholds)")
    _check_consent_lets_see(session, episode, receiver)
    if any(h.responsibility == responsibility for h in pending_handovers(session, episode.id)):
        raise Conflict(f"a handover of the {responsibility} responsibility is already pending")
    row = Handover(episode_id=episode.id, responsibility=responsibility, from_org_id=holder,
                   to_org_id=receiver.id, reason=_text(reason, "reason", required=True),
                   requested_by=user.id or 0, requested_at=at or utcnow())
    try:
        with session.begin_nested():  # a partial unique index holds one pending request
            session.add(row)
    except IntegrityError:
        raise Conflict(f"a handover of the {responsibility} responsibility is already "
                       f"pending") from None
    return row


def decide_handover(session: Session, user: User, handover_id: int, accept: bool,
                    note: Any = "", at: datetime | None = None) -> Handover:
    """Accept or reject a pending handover as a clinician of the receiving organisation."""
    row = _handover_for(session, user, handover_id)
    if user.organization_id != row.to_org_id or user.role not in CLINICIANS:
        raise NotPermitted("only a nurse, doctor or GP of the receiving organisation can "
                           "accept or reject a handover")
    episode = session.get(Episode, row.episode_id)
    if accept and episode is not None and row.status == "pending":
        if episode.status == "finished":
            raise Conflict("the episode has finished")
        if _holder(episode, row.responsibility) != row.from_org_id:
            raise Conflict(f"the {row.responsibility} responsibility has moved since the "
                           "request; it can no longer be accepted")
        receiver = session.get(Organization, row.to_org_id)
        assert receiver is not None  # a foreign key
        _check_consent_lets_see(session, episode, receiver)
    _close(session, row, "accepted" if accept else "rejected", user, note, at)
    if accept and episode is not None:
        _move_responsibility(session, episode, row)
    return row


def withdraw_handover(session: Session, user: User, handover_id: int, note: Any = "",
                      at: datetime | None = None) -> Handover:
    """Withdraw a pending handover as a clinician of the organisation that asked."""
    row = _handover_for(session, user, handover_id)
    if user.organization_id != row.from_org_id or user.role not in CLINICIANS:
        raise NotPermitted("only a nurse, doctor or GP of the organisation that asked can "
                           "withdraw a handover")
    _close(session, row, "withdrawn", user, note, at)
    return row


def pending_handovers(session: Session, episode_id: str) -> list[Handover]:
    """Return the episode's handovers waiting for the receiver, oldest first."""
    return list(session.exec(select(Handover).where(
        Handover.episode_id == episode_id, Handover.status == "pending")
        .order_by(col(Handover.id))))


def handovers_of(session: Session, user: User, direction: str,
                 status: str = "pending") -> list[Handover]:
    """Return the handovers to (incoming) or from (outgoing) the user's organisation."""
    if direction not in ("incoming", "outgoing"):
        raise EpisodeError("direction must be incoming or outgoing")
    if status not in (*HANDOVER_STATUSES, "all"):
        raise EpisodeError(f"status must be one of {', '.join(HANDOVER_STATUSES)} or all")
    if user.organization_id is None or user.role == "admin":
        return []
    org = Handover.to_org_id if direction == "incoming" else Handover.from_org_id
    query = select(Handover).where(col(org) == user.organization_id)
    if status != "all":
        query = query.where(Handover.status == status)
    return list(session.exec(query.order_by(col(Handover.requested_at).desc(),
                                            col(Handover.id).desc()).limit(500)))


@dataclass(frozen=True)
class HandoverView:
    """A handover with the names a screen shows. The receiver may not see the patient yet,
    so it shows only the name and the birth date (to match the referral) - see
    docs/care-team.md."""

    handover: Handover
    patient_id: str
    patient_name: str
    birth_date: date | None
    from_name: str
    to_name: str
    requested_by_name: str
    decided_by_name: str | None


def handover_views(session: Session, rows: Iterable[Handover]) -> list[HandoverView]:
    """Return the handovers with patient, organisation and user names."""
    rows = list(rows)
    episodes = _by_id(session, Episode, {r.episode_id for r in rows})
    patients = _by_id(session, Patient, {e.patient_id for e in episodes.values()})
    orgs = _by_id(session, Organization, {o for r in rows for o in (r.from_org_id, r.to_org_id)})
    users = _by_id(session, User, {u for r in rows for u in (r.requested_by, r.decided_by) if u})
    views = []
    for row in rows:
        patient = patients[episodes[row.episode_id].patient_id]
        decider = users.get(row.decided_by) if row.decided_by else None
        views.append(HandoverView(
            row, patient.id, patient.display, _birth_date(patient.cpr),
            orgs[row.from_org_id].name, orgs[row.to_org_id].name,
            users[row.requested_by].display_name if row.requested_by in users else "",
            decider.display_name if decider else None))
    return views


def _holder(episode: Episode, responsibility: str) -> str:
    return str(getattr(episode, f"{responsibility}_org_id"))


def _check_consent_lets_see(session: Session, episode: Episode, receiver: Organization) -> None:
    sharing = consent_in_force(session, episode.patient_id, "sharing")
    if receiver.id != episode.custodian_org_id and not (sharing and sharing.granted):
        raise Conflict(f"the patient has not consented to sharing data across sectors, so "
                       f"{receiver.name} could not see the patient; only the data custodian "
                       "can take over until sharing consent is recorded")


def _handover_for(session: Session, user: User, handover_id: int) -> Handover:
    row = session.get(Handover, handover_id)
    if row is None or user.organization_id not in (row.from_org_id, row.to_org_id):
        raise NotFound(f"handover {handover_id} is not known")
    return row


def _close(session: Session, row: Handover, status: str, user: User, note: Any,
           at: datetime | None) -> None:
    # A conditional update: of two clinicians deciding at once, exactly one wins.
    note = _text(note, "note")
    done = session.execute(update(Handover).where(
        col(Handover.id) == row.id, col(Handover.status) == "pending").values(
        status=status, decided_by=user.id, decided_at=at or utcnow(),
        decision_note=note or None).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        session.refresh(row)
        raise Conflict(f"the handover is already {row.status}")
    session.refresh(row)


def _move_responsibility(session: Session, episode: Episode, row: Handover) -> None:
    column = getattr(Episode, f"{row.responsibility}_org_id")
    done = session.execute(update(Episode).where(
        col(Episode.id) == episode.id, col(column) == row.from_org_id,
        col(Episode.status) != "finished").values({column: row.to_org_id})
        .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict(f"the {row.responsibility} responsibility has moved meanwhile")
    session.refresh(episode)
    refresh_access(session, episode.patient_id)



def _by_id(session: Session, model: Any, ids: set[Any]) -> dict[Any, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(model).where(col(model.id).in_(ids)))}


def _birth_date(cpr: str) -> date | None:
    try:
        return birth_date(cpr)
    except InvalidCPR:
        return None


def _text(value: Any, name: str, *, required: bool = False) -> str:
    return checked_text(value, name, EpisodeError, required=required)
