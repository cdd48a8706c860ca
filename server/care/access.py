"""Who may see which patient, and do what: the one place every door asks.

A clinician sees a patient when their organisation is on the patient's care team and
consent lets that organisation see the data (CareTeamMember.sees_data, kept by
server/care/episodes.py: the data custodian always, others only with sharing consent).
Patients see only themselves; administrators see no clinical data. What a user may *do*
depends on their role and on their organisation's part in the care (`may`).
Denials of sight look exactly like absence to the caller (the doors answer 404).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar
from telekol.server.models import CareTeamMember, Episode, Patient, User


def visible_patients(user: User) -> SelectOfScalar[Patient]:
    """Return a query for the patients `user` may see."""
    return _restrict(select(Patient), user)


def visible_patient_ids(user: User) -> SelectOfScalar[str]:
    """Return a query for the ids of the patients `user` may see (for IN subqueries)."""
    return _restrict(select(Patient.id), user)


def _restrict(query: Any, user: User) -> Any:
    if user.role == "patient":
        return query.where(col(Patient.id) == (user.patient_id or ""))
    if user.organization_id is None or user.role == "admin":
        return query.where(col(Patient.id) == "")  # administrators see no clinical data
    return query.join(CareTeamMember, col(CareTeamMember.patient_id) == col(Patient.id)).where(
        col(CareTeamMember.organization_id) == user.organization_id,
        col(CareTeamMember.sees_data).is_(True))


def visible_patient(session: Session, user: User, patient_id: str) -> Patient | None:
    """Return the patient if `user` may see them, else None (as if absent)."""
    return session.exec(visible_patients(user).where(col(Patient.id) == patient_id)).first()


def rooms_of(user: User) -> list[str]:
    """Return the live-update rooms a user's screen joins."""
    if user.role == "patient" and user.patient_id:
        return [f"patient:{user.patient_id}"]
    if user.organization_id and user.role != "admin":
        return [f"org:{user.organization_id}"]
    return []


def team_organizations(session: Session, patient_ids: Iterable[str]) -> dict[str, list[str]]:
    """Return, per patient, the care-team organisations consent lets see the data.

    Live events go to these organisations' rooms and to nobody else.
    """
    found: dict[str, list[str]] = {}
    ids = list(set(patient_ids))
    if not ids:
        return found
    rows = session.exec(select(CareTeamMember.patient_id, CareTeamMember.organization_id).where(
        col(CareTeamMember.patient_id).in_(ids), col(CareTeamMember.sees_data).is_(True))
        .order_by(col(CareTeamMember.organization_id)))
    for patient_id, org_id in rows:
        found.setdefault(patient_id, []).append(org_id)
    return found


CLINICAL_ROLES = ("nurse", "doctor", "gp", "secretary")
# Roles that make clinical decisions (acknowledge alerts, enter readings, propose or set
# thresholds); a secretary reads, writes messages and records consent.
CLINICIANS = ("nurse", "doctor", "gp")
PRESCRIBERS = ("doctor", "gp")

# action -> (roles allowed, which part of the care the user's organisation must hold).
# "team" = any care-team organisation that sees the data; "responsible" = monitoring or
# treatment; "custodian_or_responsible" adds the data custodian. docs/operations.md has
# the same table for people.
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "read": (CLINICAL_ROLES, "team"),
    "message_team": (CLINICAL_ROLES, "team"),
    "message_patient": (CLINICAL_ROLES, "team"),
    "enter_data": (CLINICIANS, "team"),  # a reading or questionnaire given by phone
    "propose_thresholds": (CLINICIANS, "team"),
    "edit_care_plan": (CLINICIANS, "responsible"),  # schedules, self-care, goals, notes
    "set_thresholds": (PRESCRIBERS, "treatment"),  # and decide proposals
    "hand_over": (CLINICIANS, "responsible"),  # offer the own responsibility to another org
    "pause": (CLINICIANS, "responsible"),
    "consent": (CLINICAL_ROLES, "custodian_or_responsible"),
    # Acknowledge, snooze, resolve: a clinical decision. Which organisation of the team acts
    # on a given alert (the responsible one) is server/alerts/lifecycle.py's to say.
    "act_on_alerts": (CLINICIANS, "team"),
}
# What a patient may do about themselves through the clinical doors (their own answers go
# through their own questionnaire pages).
PATIENT_ACTIONS = ("read", "message_patient")


def acts_on_alerts(user: User) -> bool:
    """Return whether the user's role acknowledges, snoozes and resolves alerts."""
    return user.role in ACTIONS["act_on_alerts"][0] and user.organization_id is not None


def may(session: Session, user: User, action: str, patient_id: str) -> bool:
    """Return whether `user` may do `action` for the patient (False when they may not see)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    if user.role == "patient":
        return action in PATIENT_ACTIONS and user.patient_id == patient_id
    roles, part = ACTIONS[action]
    if user.role not in roles or user.organization_id is None:
        return False
    member = session.get(CareTeamMember, (patient_id, user.organization_id))
    if member is None or not member.sees_data:
        return False
    if part == "team":
        return True
    episode = session.exec(select(Episode).where(
        Episode.patient_id == patient_id, Episode.status != "finished")).first()
    if episode is None:
        return False
    org = user.organization_id
    if part == "treatment":
        return org == episode.treatment_org_id
    responsible = org in (episode.monitoring_org_id, episode.treatment_org_id)
    if part == "responsible":
        return responsible
    return responsible or org == episode.custodian_org_id  # custodian_or_responsible
