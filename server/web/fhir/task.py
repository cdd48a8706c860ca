"""FHIR reads and searches of alerts as Task (telekol.fhir.task), on the /fhir blueprint.

Only the patient's care team sees its Tasks; anything else answers as absent (404, or no
match). The patient's own account sees no Tasks: they are the clinicians' work list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlalchemy import false, func
from sqlmodel import Session, col, select
from telekol.fhir.task import TASK_PRIORITY, TASK_STATUS, alert_id, task_resource
from telekol.server.care.access import visible_patient_ids
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.paging import SortKey
from telekol.server.fhir_store.search import (
    check_params,
    date_clause,
    parse_date,
    reference_id,
    sort_key,
    tokens,
)
from telekol.server.models import Alert, CareTeamMember, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import bp, fhir_auth, not_found, resource_response
from telekol.server.web.fhir.search import search

PAGING = {"_count", "_cursor", "_summary", "_format"}
TASK_PARAMS = {"patient", "subject", "status", "priority", "owner", "_id", "_lastUpdated",
               "_sort", *PAGING}
_ALERT_STATUS = {task: alert for alert, task in TASK_STATUS.items()}
_SEVERITY = {priority: severity for severity, priority in TASK_PRIORITY.items()}
_SORTS = {"authored-on": Alert.created_at, "_lastUpdated": Alert.updated_at, "_id": Alert.id}


def _monitoring_org(patient_id: Any) -> Any:
    """The care team's monitoring organisation (the smallest id, should there be several)."""
    return select(func.min(CareTeamMember.organization_id)).where(
        CareTeamMember.patient_id == patient_id, CareTeamMember.role == "monitoring")


def owner_of(session: Session, alert: Alert) -> str | None:
    """Return the organisation that must act: where it escalated to, else the monitoring one."""
    return alert.escalated_to or session.exec(_monitoring_org(alert.patient_id)).first()


def task(alert: Alert, owner: str | None) -> dict[str, Any]:
    """Return the Task of an alert, with meta (versionId changes with every update)."""
    instant = fhir_resources.instant
    return fhir_resources.with_meta(task_resource(
        alert_id=alert.id or 0, patient_id=alert.patient_id, status=alert.status,
        severity=alert.severity, rule=alert.rule, reason=alert.reason,
        observation_id=alert.last_observation_id or alert.observation_id,
        owner_org_id=owner, authored_on=instant(alert.created_at),
        last_modified=instant(alert.updated_at), count=alert.count,
        escalation_level=alert.escalation_level,
        resolved_at=instant(alert.resolved_at) if alert.resolved_at else None,
        resolved_automatically=alert.status == "resolved" and alert.resolved_by is None,
        note=alert.note,
        note_author_id=str(alert.acknowledged_by) if alert.acknowledged_by else None,
        note_time=instant(alert.acknowledged_at) if alert.acknowledged_at else None),
        alert.updated_at)


def renderer(session: Session) -> Callable[[Alert], dict[str, Any]]:
    """Return a Task renderer that looks each patient's monitoring organisation up once."""
    monitoring: dict[str, str | None] = {}

    def render(alert: Alert) -> dict[str, Any]:
        if alert.escalated_to:
            return task(alert, alert.escalated_to)
        if alert.patient_id not in monitoring:
            monitoring[alert.patient_id] = owner_of(session, alert)
        return task(alert, monitoring[alert.patient_id])
    return render


def task_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the alerts of patients on whose care team `user` is, matching the search."""
    check_params(params, TASK_PARAMS)
    query = select(Alert).where(
        col(Alert.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
    if user.role == "patient":
        query = query.where(false())
    for name in ("patient", "subject"):
        for raw in params.get(name, []):
            ids = [reference_id(part, "Patient") for part in raw.split(",")]
            query = query.where(col(Alert.patient_id).in_(ids))
    for raw in params.get("_id", []):
        numbers = [n for n in (alert_id(part.strip()) for part in raw.split(",")) if n is not None]
        query = query.where(col(Alert.id).in_(numbers))
    for raw in params.get("status", []):
        wanted = [_ALERT_STATUS[code] for _, code in tokens(raw) if code in _ALERT_STATUS]
        query = query.where(col(Alert.status).in_(wanted))
    for raw in params.get("priority", []):
        wanted = [_SEVERITY[code] for _, code in tokens(raw) if code in _SEVERITY]
        query = query.where(col(Alert.severity).in_(wanted))
    for raw in params.get("owner", []):
        orgs = [reference_id(part, "Organization") for part in raw.split(",")]
        owner = func.coalesce(col(Alert.escalated_to),
                              _monitoring_org(col(Alert.patient_id)).scalar_subquery())
        query = query.where(owner.in_(orgs))
    for raw in params.get("_lastUpdated", []):
        query = query.where(date_clause(parse_date(raw), col(Alert.updated_at)))
    return query


def task_sort(params: dict[str, list[str]]) -> SortKey:
    """Return the keyset order `_sort` names: authored-on (default -authored-on), _lastUpdated
    or _id, each optionally descending."""
    return sort_key(params, "-authored-on", _SORTS, Alert.id)


def patient_tasks(session: Session, user: User, patient_id: str) -> list[dict[str, Any]]:
    """Return the Tasks of one patient that `user` may see, newest first (for $everything)."""
    rows = session.exec(task_filter(user, {}).where(Alert.patient_id == patient_id)
                        .order_by(col(Alert.created_at).desc(), col(Alert.id).desc())).all()
    render = renderer(session)
    return [render(row) for row in rows]


@bp.get("/Task/<ident>")
@fhir_auth
def read_task(ident: str) -> Response:
    """Read the Task of an alert of a patient on whose care team the caller is."""
    number = alert_id(ident)
    row = None if number is None else db().exec(
        task_filter(the_user(), {}).where(Alert.id == number)).first()
    if row is None:
        return not_found("Task", ident)
    note(row.patient_id, "read", f"Task/{ident}")
    return resource_response(renderer(db())(row))


@bp.get("/Task")
@fhir_auth
def search_tasks() -> Response:
    """Search Tasks by patient/subject, status, priority, owner, _id and _lastUpdated."""
    params = request.args.to_dict(flat=False)
    return search("Task", task_filter(the_user(), params), task_sort(params), renderer(db()),
                  patient_of=lambda row: row.patient_id)
