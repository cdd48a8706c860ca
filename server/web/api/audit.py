"""The audit log on the JSON door: administrators search and verify it; a patient reads who
has accessed their data (`/api/me/access-log`). Reading the log is itself audited."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from sqlmodel import select
from telekol.server.audit import log as audit
from telekol.server.audit.anchor import verify_anchored
from telekol.server.models import AuditRecord, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db, services

bp = Blueprint("audit", __name__, url_prefix="/api")
SEARCH_PARAMS = ("patient", "user", "organization", "action", "door", "since", "until",
                 "before", "limit")
ACCESS_LOG_PAGE = 50


class BadQuery(ValueError):
    """A query parameter the door cannot use; answered 400."""


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


@bp.get("/audit")
@login_required
def search():  # type: ignore[no-untyped-def]
    """Search the audit log, newest first (administrators only); page with `before`."""
    if the_user().role != "admin":
        return _error("administrators only", 403)
    try:
        criteria = _criteria()
    except BadQuery as problem:
        return _error(str(problem), 400)
    shown = "&".join(f"{k}={request.args[k]}" for k in SEARCH_PARAMS if request.args.get(k))
    note(None, "search", "AuditRecord", detail=shown[:500])
    rows = [] if criteria is None else audit.search(db(), **criteria)
    return jsonify([audit.record_view(row) for row in rows])


def _criteria() -> dict[str, Any] | None:
    """Return search() keywords from the query, or None when the named user does not exist."""
    args = request.args
    found: dict[str, Any] = {"patient_id": args.get("patient") or None,
                             "organization_id": args.get("organization") or None,
                             "action": args.get("action") or None,
                             "door": args.get("door") or None,
                             "since": _instant("since"), "until": _instant("until"),
                             "before_id": _number("before"), "limit": _number("limit") or 100}
    user = args.get("user", "").strip()
    if user.isdigit():
        found["user_id"] = int(user)
    elif user:
        found["user_id"] = db().exec(select(User.id).where(User.username == user)).first()
        if found["user_id"] is None:
            return None
    return found


def _instant(name: str) -> datetime | None:
    raw = request.args.get(name, "").strip().replace(" ", "+")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name} must be an RFC 3339 instant with offset") from None
    if moment.tzinfo is None:
        raise BadQuery(f"{name} must carry a UTC offset")
    return moment


def _number(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if raw and not raw.isdigit():
        raise BadQuery(f"{name} must be a whole number")
    return min(int(raw), 2**62) if raw else None


@bp.get("/audit/verify")
@login_required
def verify():  # type: ignore[no-untyped-def]
    """Walk the whole chain and report whether it is intact (administrators only)."""
    if the_user().role != "admin":
        return _error("administrators only", 403)
    note(None, "verify", "AuditRecord")
    return jsonify(asdict(verify_anchored(db(), services().settings)))


@bp.get("/me/access-log")
@login_required
def access_log():  # type: ignore[no-untyped-def]
    """List who accessed the signed-in patient's data, newest first; page with `before`."""
    user = the_user()
    if user.role != "patient" or not user.patient_id:
        return _error("the access log is for patient accounts", 403)
    try:
        before, limit = _number("before"), min(_number("limit") or ACCESS_LOG_PAGE, 200)
    except BadQuery as problem:
        return _error(str(problem), 400)
    note(user.patient_id, "read", f"AuditEvent?patient={user.patient_id}")
    rows = audit.access_log(db(), user.patient_id, before_id=before, limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    names = audit.organization_names(db(), rows)
    return jsonify(entries=[access_entry(row, names) for row in rows],
                   next_before=rows[-1].id if more else None)


def access_entry(row: AuditRecord, org_names: dict[str, str]) -> dict[str, Any]:
    """Return one access as the patient sees it: who, when, what, through which door."""
    org = row.organization_id
    return {"id": row.id, "at": audit.record_view(row)["at"],
            "who": {"name": row.display_name, "role": row.role,
                    "organization": {"id": org, "name": org_names.get(org, org)} if org else None},
            "action": row.action, "kind": audit.resource_kind(row.resource),
            "resource": row.resource, "door": row.door, "outcome": row.outcome}
