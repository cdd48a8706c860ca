"""FHIR reads and searches of shared care plans as CarePlan (telekol.fhir.care_plan).

One CarePlan per episode: its id is the episode id and meta.versionId the plan version;
`_history/{n}` reads an older version. Only the patient's care team and the patient see
it; anything else answers as absent (404, or no match).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from sqlmodel import Session, col, select
from telekol.fhir.care_plan import care_plan_resource
from telekol.server.alerts.escalation import TIMEZONE
from telekol.server.care.access import visible_patient, visible_patient_ids
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.paging import Page
from telekol.server.fhir_store.search import check_params, reference_id
from telekol.server.models import CarePlanVersion, Episode, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import (
    bp,
    fhir_auth,
    fhir_response,
    not_found,
    outcome_response,
    resource_response,
    searchset,
)

CARE_PLAN_PARAMS = {"patient", "subject", "_id", "_format"}


def care_plan_of(episode: Episode, row: CarePlanVersion) -> dict[str, Any]:
    """Return the CarePlan of one version of an episode's plan."""
    return care_plan_resource(
        episode_id=episode.id, patient_id=episode.patient_id,
        active=episode.status != "finished", version=row.version, content=row.content,
        episode_start=episode.started_at.astimezone(TIMEZONE).date(),
        period_end=episode.ended_at.astimezone(TIMEZONE).date() if episode.ended_at else None,
        changed_at=fhir_resources.instant(row.changed_at),
        author_id=str(row.changed_by) if row.changed_by else None)


def _episode(session: Session, user: User, ident: str) -> Episode | None:
    episode = session.get(Episode, ident)
    if episode is None or visible_patient(session, user, episode.patient_id) is None:
        return None
    return episode


def _newest(session: Session, episode: Episode) -> CarePlanVersion | None:
    return session.exec(select(CarePlanVersion).where(CarePlanVersion.episode_id == episode.id)
                        .order_by(col(CarePlanVersion.version).desc())).first()


@bp.get("/CarePlan/<ident>")
@fhir_auth
def read_care_plan(ident: str) -> Response:
    """Read the current version of an episode's care plan."""
    episode = _episode(db(), the_user(), ident)
    row = _newest(db(), episode) if episode else None
    if episode is None or row is None:
        return not_found("CarePlan", ident)
    note(episode.patient_id, "read", f"CarePlan/{ident}")
    return resource_response(care_plan_of(episode, row))


@bp.get("/CarePlan/<ident>/_history/<version>")
@fhir_auth
def vread_care_plan(ident: str, version: str) -> Response:
    """Read one version of an episode's care plan."""
    episode = _episode(db(), the_user(), ident)
    row = db().exec(select(CarePlanVersion).where(
        CarePlanVersion.episode_id == ident,
        CarePlanVersion.version == int(version))).first() if episode and version.isdigit() \
        and len(version) < 10 else None
    if episode is None or row is None:
        return not_found("CarePlan", f"{ident}/_history/{version}")
    note(episode.patient_id, "read", f"CarePlan/{ident}/_history/{version}")
    return resource_response(care_plan_of(episode, row))


@bp.get("/CarePlan")
@fhir_auth
def search_care_plans() -> Response:
    """Search care plans by patient/subject or _id (the current version of each episode's)."""
    params = request.args.to_dict(flat=False)
    check_params(params, CARE_PLAN_PARAMS)
    query = select(Episode).where(col(Episode.patient_id).in_(
        visible_patient_ids(the_user()).scalar_subquery()))
    for name in ("patient", "subject"):
        for raw in params.get(name, []):
            query = query.where(col(Episode.patient_id).in_(
                [reference_id(part, "Patient") for part in raw.split(",")]))
    for raw in params.get("_id", []):
        query = query.where(col(Episode.id).in_([part.strip() for part in raw.split(",")]))
    if not any(params.get(name) for name in ("patient", "subject", "_id")):
        return _needs_a_patient()
    episodes = db().exec(query.order_by(col(Episode.started_at).desc())).all()
    found = [(e, row) for e in episodes if (row := _newest(db(), e)) is not None]
    note([e.patient_id for e, _row in found], "search",
         "CarePlan?" + request.query_string.decode()[:250])
    matches = [care_plan_of(episode, row) for episode, row in found]
    return fhir_response(searchset("CarePlan", params, Page((), len(matches), len(matches)),
                                   matches))


def _needs_a_patient() -> Response:
    return outcome_response(400, "invalid", "search CarePlan by patient, subject or _id")
