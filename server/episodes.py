"""Telemonitoring episodes: who keeps the data, who reacts, who treats, and what consent allows.

The Episode is the one source of truth for responsibility (the Danish eHealth
infrastructure's model: a data custodian that never changes within an episode, plus
monitoring and treatment responsibility that move only when the receiver accepts).
`refresh_access` derives from it, and from the newest consent, the two columns of
CareTeamMember that every other module reads: `role` (who must act) and `sees_data`
(whether consent lets the organisation see the patient at all). It is the only writer of
those columns; call it after any change to an episode, a care team or a consent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.fhir.cpr import InvalidCPR, birth_date
from telekol.server import events
from telekol.server.access import CLINICIANS, may, team_organizations, visible_patient
from telekol.server.db import utcnow
from telekol.server.free_text import checked_text
from telekol.server.models import (
    CareTeamMember,
    Consent,
    Episode,
    Handover,
    Organization,
    Patient,
    User,
)

RESPONSIBILITIES = ("monitoring", "treatment")
CONSENT_SCOPES = ("participation", "sharing")
CONSENT_METHODS = ("written", "verbal", "digital")
NON_RESPONSIBLE_ROLE = {"hospital": "specialist"}  # any other kind: "member"


class EpisodeError(ValueError):
    """A request about an episode that cannot be carried out (the message says why)."""


class NotFound(EpisodeError):
    """The patient or handover is absent, or the user may not see it (doors answer 404)."""


class NotPermitted(EpisodeError):
    """The user sees the patient but their role or organisation may not do this (403)."""


class Conflict(EpisodeError):
    """The request clashes with the state of the episode or with consent (409)."""


def current_episode(session: Session, patient_id: str) -> Episode | None:
    """Return the patient's episode that is not finished, if any."""
    return session.exec(select(Episode).where(
        Episode.patient_id == patient_id, Episode.status != "finished")).first()


def latest_episode(session: Session, patient_id: str) -> Episode | None:
    """Return the current episode, else the most recently started one."""
    return current_episode(session, patient_id) or session.exec(
        select(Episode).where(Episode.patient_id == patient_id)
        .order_by(col(Episode.started_at).desc())).first()


def consent_in_force(session: Session, patient_id: str, scope: str) -> Consent | None:
    """Return the newest consent decision of `scope` for the patient, if any was recorded."""
    return session.exec(select(Consent).where(
        Consent.patient_id == patient_id, Consent.scope == scope)
        .order_by(col(Consent.id).desc())).first()


def start_episode(session: Session, patient_id: str, *, custodian: str, monitoring: str,
                  treatment: str, started_at: datetime | None = None,
                  condition: str = "copd") -> Episode:
    """Start an episode; the three organisations join the care team if not on it."""
    if current_episode(session, patient_id) is not None:
        raise EpisodeError("the patient already has an episode that is not finished")
    for org_id in {custodian, monitoring, treatment}:
        if session.get(Organization, org_id) is None:
            raise EpisodeError(f"no organisation {org_id}")
    episode = Episode(id=str(uuid.uuid4()), patient_id=patient_id, condition=condition,
                      custodian_org_id=custodian, monitoring_org_id=monitoring,
                      treatment_org_id=treatment, started_at=started_at or utcnow())
    session.add(episode)
    session.flush()
    refresh_access(session, patient_id)
    return episode


def record_consent(session: Session, patient_id: str, scope: str, granted: bool, *,
                   by: User | None = None, method: str = "written", note: str = "",
                   at: datetime | None = None) -> Consent:
    """Record a consent decision (a new row; earlier ones stay) and apply it at once."""
    if scope not in CONSENT_SCOPES:
        raise EpisodeError(f"consent scope must be one of {', '.join(CONSENT_SCOPES)}")
    if method not in CONSENT_METHODS:
        raise EpisodeError(f"consent method must be one of {', '.join(CONSENT_METHODS)}")
    if len(note) > 1000:
        raise EpisodeError("the note must be at most 1000 characters")
    row = Consent(patient_id=patient_id, scope=scope, granted=granted, method=method,
                  note=note.strip(), recorded_by=by.id if by else None,
                  recorded_by_name=by.display_name if by else "", recorded_at=at or utcnow())
    session.add(row)
    session.flush()
    refresh_access(session, patient_id)
    return row


def refresh_access(session: Session, patient_id: str) -> None:
    """Bring the care team's `role` and `sees_data` in line with the episode and consent."""
    episode = latest_episode(session, patient_id)
    if episode is None:
        return  # no episode: nobody is responsible and the team keeps what it had
    members = {m.organization_id: m for m in session.exec(
        select(CareTeamMember).where(CareTeamMember.patient_id == patient_id))}
    for org_id in (episode.custodian_org_id, episode.monitoring_org_id,
                   episode.treatment_org_id):
        if org_id not in members:
            members[org_id] = CareTeamMember(patient_id=patient_id, organization_id=org_id,
                                             role="member")
    consent = consent_in_force(session, patient_id, "sharing")
    sharing = consent is not None and consent.granted
    kinds = dict(session.exec(select(Organization.id, Organization.kind).where(
        col(Organization.id).in_(list(members)))).all())
    for org_id, member in members.items():
        if org_id == episode.monitoring_org_id:
            role = "monitoring"
        elif org_id == episode.treatment_org_id:
            role = "treatment"
        elif member.role in RESPONSIBILITIES:
            role = NON_RESPONSIBLE_ROLE.get(kinds.get(org_id, ""), "member")
        else:
            role = member.role
        sees = sharing or org_id == episode.custodian_org_id
        if member.role != role or member.sees_data != sees or member not in session:
            member.role, member.sees_data = role, sees
            session.add(member)
    session.flush()


# --- Doing things as a user: consent, handovers (every door calls these) ----------------

TREATING_KINDS = ("hospital", "gp")  # treatment responsibility needs doctors or GPs
HANDOVER_STATUSES = ("pending", "accepted", "rejected", "withdrawn")


def require(session: Session, user: User, action: str, patient_id: str) -> Patient:
    """Return the patient if `user` may do `action`; NotFound when they may not see them."""
    patient = visible_patient(session, user, patient_id)
    if patient is None:
        raise NotFound(f"patient {patient_id} is not known")
    if not may(session, user, action, patient_id):
        raise NotPermitted(f"your role or organisation may not {action.replace('_', ' ')} "
                           "for this patient")
    return patient


def consent_by(session: Session, user: User, patient_id: str, scope: Any, granted: Any, *,
               method: Any = "written", note: Any = "", at: datetime | None = None) -> Consent:
    """Record a consent decision a clinician took down; withdrawn participation ends the
    episode (its data are kept)."""
    require(session, user, "consent", patient_id)
    if not isinstance(granted, bool):
        raise EpisodeError("granted must be true or false")
    if not all(isinstance(v, str) for v in (scope, method, note)):
        raise EpisodeError("scope, method and note must be text")
    at = at or utcnow()
    row = record_consent(session, patient_id, scope, granted, by=user, method=method,
                         note=note, at=at)
    if scope == "participation" and not granted:
        finish_episode(session, patient_id, at)
    return row


def consent_history(session: Session, patient_id: str) -> list[Consent]:
    """Return every consent decision recorded for the patient, newest first."""
    return list(session.exec(select(Consent).where(Consent.patient_id == patient_id)
                             .order_by(col(Consent.id).desc())))


def finish_episode(session: Session, patient_id: str, at: datetime) -> Episode | None:
    """Finish the current episode (data kept, pending handovers withdrawn), if any."""
    episode = current_episode(session, patient_id)
    if episode is None:
        return None
    episode.status, episode.ended_at = "finished", at
    session.add(episode)
    for row in pending_handovers(session, episode.id):
        row.status, row.decided_at, row.decision_note = "withdrawn", at, "the episode finished"
        session.add(row)
    session.flush()
    refresh_access(session, patient_id)
    return episode


def finished_patient_ids(session: Session) -> set[str]:
    """Return the patients whose episodes are all finished (nothing is expected of them)."""
    ongoing = select(Episode.patient_id).where(Episode.status != "finished")
    return set(session.exec(select(Episode.patient_id).where(
        Episode.status == "finished", col(Episode.patient_id).not_in(ongoing))))


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


def team_event(session: Session, patient: Patient, change: str,
               also: Iterable[str] = ()) -> dict[str, Any]:
    """Return the live `team` event telling the care team (and `also` orgs) of a change."""
    orgs = sorted({*team_organizations(session, [patient.id]).get(patient.id, []), *also})
    return {"type": "team", "rooms": events.rooms_for(patient.id, orgs),
            "data": {"patient": events.patient_ref(patient), "change": change}}


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
