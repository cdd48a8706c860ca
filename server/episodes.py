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
from datetime import datetime

from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.models import CareTeamMember, Consent, Episode, Organization, User

RESPONSIBILITIES = ("monitoring", "treatment")
CONSENT_SCOPES = ("participation", "sharing")
CONSENT_METHODS = ("written", "verbal", "digital")
NON_RESPONSIBLE_ROLE = {"hospital": "specialist"}  # any other kind: "member"


class EpisodeError(ValueError):
    """A request about an episode that cannot be carried out (the message says why)."""


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
