"""FHIR reads and searches of episodes (EpisodeOfCare), care teams (CareTeam) and Consent.

Same access rule as Observation: only what the caller may see of a patient; anything else
answers as absent (404 on read, no match in a search). CareTeam ids are patient ids: the
care team belongs to the patient and outlives an episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlalchemy import func
from sqlmodel import Session, col, select
from telekol.fhir.episode import (
    TeamMember,
    care_team_resource,
    consent_resource,
    episode_of_care_resource,
)
from telekol.server.care.access import visible_patient_ids
from telekol.server.care.episodes import latest_episode
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.directory import by_id
from telekol.server.fhir_store.search import check_params, reference_id, tokens
from telekol.server.models import CareTeamMember, Consent, Episode, Patient, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import bp, fhir_auth, not_found, resource_response
from telekol.server.web.fhir.search import search

PAGING = {"_count", "_cursor", "_summary", "_format"}
EPISODE_PARAMS = {"patient", "status", "_id", *PAGING}
CARE_TEAM_PARAMS = {"patient", "subject", "_id", *PAGING}
CONSENT_PARAMS = {"patient", "scope", "_id", *PAGING}
_SCOPES = {"treatment": "participation", "patient-privacy": "sharing"}
instant = fhir_resources.instant


def episode_of_care(row: Episode) -> dict[str, Any]:
    """Return the EpisodeOfCare of a stored episode."""
    return fhir_resources.with_meta(episode_of_care_resource(
        episode_id=row.id, patient_id=row.patient_id, status=row.status,
        condition=row.condition, custodian_org_id=row.custodian_org_id,
        monitoring_org_id=row.monitoring_org_id, treatment_org_id=row.treatment_org_id,
        started_at=instant(row.started_at),
        ended_at=instant(row.ended_at) if row.ended_at else None, team_id=row.patient_id),
        row.ended_at or row.started_at)


def care_team(session: Session, patient: Patient) -> dict[str, Any]:
    """Return the patient's CareTeam: every organisation on it, with its part and sight."""
    episode = latest_episode(session, patient.id)
    members = session.exec(select(CareTeamMember).where(
        CareTeamMember.patient_id == patient.id).order_by(col(CareTeamMember.organization_id)))
    custodian = episode.custodian_org_id if episode else None
    return fhir_resources.with_meta(care_team_resource(
        team_id=patient.id, patient_id=patient.id,
        active=episode is not None and episode.status != "finished",
        condition=episode.condition if episode else "copd",
        episode_name=f"Care team of {patient.display}",
        members=[TeamMember(m.organization_id, m.role, m.sees_data,
                            m.organization_id == custodian) for m in members]), None)


def consent_renderer(session: Session) -> Callable[[Consent], dict[str, Any]]:
    """Return a Consent renderer that finds each patient's decisions in force once."""
    in_force: dict[str, set[int]] = {}
    custodians: dict[str, str | None] = {}

    def render(row: Consent) -> dict[str, Any]:
        if row.patient_id not in in_force:
            in_force[row.patient_id] = set(session.execute(select(func.max(Consent.id)).where(
                col(Consent.patient_id) == row.patient_id).group_by(col(Consent.scope)))
                .scalars())
            episode = latest_episode(session, row.patient_id)
            custodians[row.patient_id] = episode.custodian_org_id if episode else None
        return fhir_resources.with_meta(consent_resource(
            consent_id=str(row.id), patient_id=row.patient_id, scope=row.scope,
            granted=row.granted, in_force=row.id in in_force[row.patient_id],
            method=row.method, note=row.note, recorded_at=instant(row.recorded_at),
            custodian_org_id=custodians[row.patient_id]), row.recorded_at)
    return render


def _visible(user: User) -> Any:
    return visible_patient_ids(user).scalar_subquery()


def _patients(params: dict[str, list[str]], names: tuple[str, ...] = ("patient",)) -> list[Any]:
    return [[reference_id(part, "Patient") for part in raw.split(",")]
            for name in names for raw in params.get(name, [])]


def episode_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the episodes of patients `user` may see, matching patient, status and _id."""
    check_params(params, EPISODE_PARAMS)
    query = select(Episode).where(col(Episode.patient_id).in_(_visible(user)))
    for ids in _patients(params):
        query = query.where(col(Episode.patient_id).in_(ids))
    for raw in params.get("status", []):
        query = query.where(col(Episode.status).in_([code for _, code in tokens(raw)]))
    for raw in params.get("_id", []):
        query = query.where(col(Episode.id).in_(raw.split(",")))
    return query


def care_team_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the patients (with an episode) whose care team `user` may see."""
    check_params(params, CARE_TEAM_PARAMS)
    query = select(Patient).where(col(Patient.id).in_(_visible(user)),
                                  col(Patient.id).in_(select(Episode.patient_id)))
    for ids in _patients(params, ("patient", "subject")):
        query = query.where(col(Patient.id).in_(ids))
    for raw in params.get("_id", []):
        query = query.where(col(Patient.id).in_(raw.split(",")))
    return query


def consent_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the consent decisions of patients `user` may see, matching the search."""
    check_params(params, CONSENT_PARAMS)
    query = select(Consent).where(col(Consent.patient_id).in_(_visible(user)))
    for ids in _patients(params):
        query = query.where(col(Consent.patient_id).in_(ids))
    for raw in params.get("scope", []):
        query = query.where(col(Consent.scope).in_(
            [_SCOPES[code] for _, code in tokens(raw) if code in _SCOPES]))
    for raw in params.get("_id", []):
        query = query.where(col(Consent.id).in_([int(p) for p in raw.split(",") if p.isdigit()]))
    return query


@bp.get("/EpisodeOfCare/<ident>")
@fhir_auth
def read_episode(ident: str) -> Response:
    """Read an episode of a patient the caller may see."""
    row = db().exec(episode_filter(the_user(), {}).where(Episode.id == ident)).first()
    if row is None:
        return not_found("EpisodeOfCare", ident)
    note(row.patient_id, "read", f"EpisodeOfCare/{ident}")
    return resource_response(episode_of_care(row))


@bp.get("/EpisodeOfCare")
@fhir_auth
def search_episodes() -> Response:
    """Search episodes by patient, status (active, finished) and _id."""
    params = request.args.to_dict(flat=False)
    return search("EpisodeOfCare", episode_filter(the_user(), params), by_id(col(Episode.id)),
                  episode_of_care, patient_of=lambda row: row.patient_id)


@bp.get("/CareTeam/<ident>")
@fhir_auth
def read_care_team(ident: str) -> Response:
    """Read a patient's care team (its id is the patient's id)."""
    row = db().exec(care_team_filter(the_user(), {}).where(Patient.id == ident)).first()
    if row is None:
        return not_found("CareTeam", ident)
    note(row.id, "read", f"CareTeam/{ident}")
    return resource_response(care_team(db(), row))


@bp.get("/CareTeam")
@fhir_auth
def search_care_teams() -> Response:
    """Search care teams by patient/subject and _id."""
    params = request.args.to_dict(flat=False)
    return search("CareTeam", care_team_filter(the_user(), params), by_id(col(Patient.id)),
                  lambda row: care_team(db(), row), patient_of=lambda row: row.id)


@bp.get("/Consent/<ident>")
@fhir_auth
def read_consent(ident: str) -> Response:
    """Read one consent decision of a patient the caller may see."""
    row = db().exec(consent_filter(the_user(), {"_id": [ident]})).first()
    if row is None:
        return not_found("Consent", ident)
    note(row.patient_id, "read", f"Consent/{ident}")
    return resource_response(consent_renderer(db())(row))


@bp.get("/Consent")
@fhir_auth
def search_consents() -> Response:
    """Search consent decisions by patient, scope (treatment = participation,
    patient-privacy = sharing) and _id."""
    params = request.args.to_dict(flat=False)
    return search("Consent", consent_filter(the_user(), params), by_id(col(Consent.id)),
                  consent_renderer(db()), patient_of=lambda row: row.patient_id)
