"""The audit log as FHIR AuditEvent, on the /fhir blueprint.

A patient reads the records about themselves; an administrator reads every record; care
staff are refused (403): the log is not part of the care. Reading it is itself audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlalchemy import false
from sqlmodel import Session, col, select
from telekol.fhir.audit_event import AuditFacts, audit_event
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.paging import SortKey
from telekol.server.fhir_store.search import check_params, date_clause, parse_date, reference_id
from telekol.server.models import AuditRecord, Organization, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import (
    bp,
    fhir_auth,
    not_found,
    outcome_response,
    resource_response,
)
from telekol.server.web.fhir.search import search

AUDIT_PARAMS = {"patient", "date", "_id", "_count", "_cursor", "_summary", "_format"}
_NEWEST_FIRST = SortKey(col(AuditRecord.id), col(AuditRecord.id), descending=True)
_KIND = "AuditEvent"


def _refused() -> Response | None:
    if the_user().role in ("admin", "patient"):
        return None
    return outcome_response(403, "forbidden", "the audit log is for administrators, and for "
                                              "patients about themselves")


@bp.get("/AuditEvent/<ident>")
@fhir_auth
def read_audit_event(ident: str) -> Response:
    """Read one audit record (a patient: only one about themselves)."""
    user = the_user()
    refused = _refused()
    if refused is not None:
        return refused
    row = db().get(AuditRecord, int(ident)) if ident.isdigit() and len(ident) < 18 else None
    if row is None or (user.role == "patient" and row.patient_id != user.patient_id):
        return not_found(_KIND, ident)
    note(user.patient_id if user.role == "patient" else None, "read", f"{_KIND}/{ident}")
    return resource_response(renderer(db())(row))


@bp.get("/AuditEvent")
@fhir_auth
def search_audit_events() -> Response:
    """Search audit records by `patient`, `date` (recorded) or `_id`, newest first."""
    user = the_user()
    refused = _refused()
    if refused is not None:
        return refused
    params = request.args.to_dict(flat=False)
    query = audit_filter(user, params)
    if user.role == "patient":
        note(user.patient_id, "search", f"{_KIND}?patient={user.patient_id}")
    else:
        note(None, "search", _KIND, detail=request.query_string.decode(errors="replace")[:500])
    return search(_KIND, query, _NEWEST_FIRST, renderer(db()))


def audit_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the audit records `user` may read that match the search."""
    check_params(params, AUDIT_PARAMS)
    query = select(AuditRecord)
    if user.role == "patient":
        query = query.where(col(AuditRecord.patient_id) == user.patient_id)
    elif user.role != "admin":
        query = query.where(false())
    for raw in params.get("patient", []):
        ids = [reference_id(part, "Patient") for part in raw.split(",")]
        query = query.where(col(AuditRecord.patient_id).in_(ids))
    for raw in params.get("date", []):
        query = query.where(date_clause(parse_date(raw), col(AuditRecord.at)))
    for raw in params.get("_id", []):
        numbers = [int(part) for part in raw.split(",") if part.strip().isdigit()
                   and len(part.strip()) < 18]
        query = query.where(col(AuditRecord.id).in_(numbers))
    return query


def renderer(session: Session) -> Callable[[AuditRecord], dict[str, Any]]:
    """Return an AuditEvent renderer that looks each organisation's name up once."""
    names: dict[str, str | None] = {}

    def render(row: AuditRecord) -> dict[str, Any]:
        org = row.organization_id
        if org and org not in names:
            found = session.get(Organization, org)
            names[org] = found.name if found else None
        facts = AuditFacts(
            record_id=row.id or 0, recorded=fhir_resources.instant(row.at), action=row.action,
            resource=row.resource, door=row.door, outcome=row.outcome,
            patient_id=row.patient_id, user_id=row.user_id, username=row.username,
            display_name=row.display_name, role=row.role, organization_id=org,
            organization_name=names.get(org) if org else None, status=row.status,
            detail=row.detail, chain_hash=row.hash)
        return fhir_resources.with_meta(audit_event(facts), row.at)
    return render

