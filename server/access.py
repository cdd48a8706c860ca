"""Who may see which patient: the user's organisation must be on the care team.

Denials look exactly like absence to the caller (the doors answer 404).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar
from telekol.server.models import CareTeamMember, Patient, User


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
        col(CareTeamMember.organization_id) == user.organization_id)


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
