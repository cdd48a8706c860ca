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
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.care.access import may, team_organizations, visible_patient
from telekol.server.care.free_text import checked_text
from telekol.server.db import utcnow
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
    for row in session.exec(select(Handover).where(Handover.episode_id == episode.id,
                                                   Handover.status == "pending")):
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


def team_event(session: Session, patient: Patient, change: str,
               also: Iterable[str] = ()) -> dict[str, Any]:
    """Return the live `team` event telling the care team (and `also` orgs) of a change."""
    orgs = sorted({*team_organizations(session, [patient.id]).get(patient.id, []), *also})
    return {"type": "team", "rooms": events.rooms_for(patient.id, orgs),
            "data": {"patient": events.patient_ref(patient), "change": change}}


def _text(value: Any, name: str, *, required: bool = False) -> str:
    return checked_text(value, name, EpisodeError, required=required)
