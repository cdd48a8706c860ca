"""A patient's readings over time, for charts: JSON at /api and the series the pages draw.

`GET /api/patients/<id>/observations?code=&since=` (care team) and
`GET /api/me/observations?code=&since=` (the patient) answer
`[{"t": instant, "v": value, "severity": ...}]`, oldest first; blood pressure adds "v2"
(the diastolic). `since` defaults to 30 days ago.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, request
from flask_login import login_required
from sqlalchemy import func
from sqlmodel import Session, col, select
from telekol.server.care.access import may, visible_patient
from telekol.server.db import utcnow
from telekol.server.events import instant
from telekol.server.models import CarePlanVersion, Observation, Threshold
from telekol.server.web.api.alerts import error
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db

bp = Blueprint("me_api", __name__, url_prefix="/api")

DEFAULT_DAYS = 30
MAX_POINTS = 5000  # per request: 90 days of a reading every half hour
LIMIT_KEYS = ("red_low", "yellow_low", "yellow_high", "red_high")
_DIASTOLIC = "8462-4"


@bp.get("/patients/<patient_id>/observations")
@login_required
def patient_observations(patient_id: str):  # type: ignore[no-untyped-def]
    """List a patient's readings of one type since an instant, oldest first."""
    session, user = db(), the_user()
    if visible_patient(session, user, patient_id) is None:
        return error("no such patient", 404)
    if not may(session, user, "read", patient_id):
        return error("your role may not read this patient's data", 403)
    return _observations(session, patient_id)


@bp.get("/me/observations")
@login_required
def my_observations():  # type: ignore[no-untyped-def]
    """List the signed-in patient's own readings of one type since an instant."""
    user = the_user()
    if user.role != "patient" or not user.patient_id:
        return error("only patients have their own readings", 404)
    return _observations(db(), user.patient_id)


def _observations(session: Session, patient_id: str) -> Any:
    code = request.args.get("code", "").strip()
    if not code:
        return error("code is required (e.g. spo2)", 400)
    since = parse_since(request.args.get("since", ""))
    if since is None:
        return error("since must be an RFC 3339 instant with a UTC offset", 400)
    note(patient_id, "read", f"Observation?patient={patient_id}&code={code}")
    return jsonify(series(session, patient_id, since, code).get(code, []))


def parse_since(raw: str) -> datetime | None:
    """Return the instant `raw` names (default: 30 days ago), or None when it is not one."""
    raw = raw.strip().replace(" ", "+")
    if not raw:
        return utcnow() - timedelta(days=DEFAULT_DAYS)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def series(session: Session, patient_id: str, since: datetime,
           code: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Return the patient's readings since `since` per type code, oldest first."""
    query = select(Observation).where(Observation.patient_id == patient_id,
                                      col(Observation.effective) >= since)
    if code:
        query = query.where(Observation.type_code == code)
    rows = session.exec(query.order_by(col(Observation.effective).desc()).limit(MAX_POINTS))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in reversed(rows.all()):
        found.setdefault(row.type_code, []).append(point(row))
    return found


def latest(session: Session, patient_id: str) -> dict[str, dict[str, Any]]:
    """Return the patient's newest reading of every type they have measured."""
    newest = func.row_number().over(partition_by=Observation.type_code,
                                    order_by=col(Observation.effective).desc()).label("rank")
    ranked = select(Observation.id, newest).where(
        Observation.patient_id == patient_id).subquery()
    rows = session.exec(select(Observation).join(ranked, ranked.c.id == Observation.id)
                        .where(ranked.c.rank == 1))
    return {row.type_code: point(row) for row in rows}


def point(row: Observation) -> dict[str, Any]:
    """Return one stored reading as a chart point."""
    found: dict[str, Any] = {"t": instant(row.effective), "v": row.value,
                             "severity": row.severity}
    if row.type_code == "bp":
        for component in json.loads(row.resource).get("component", []):
            if component["code"]["coding"][0]["code"] == _DIASTOLIC:
                found["v2"] = component.get("valueQuantity", {}).get("value")
    return found


def limits(session: Session, patient_id: str,
           plan: CarePlanVersion | None) -> dict[str, dict[str, float | None]]:
    """Return the patient's red/yellow limits per reading code.

    The stored Threshold rows are what the alert rules use, so they win over the care
    plan's copy; a code only the plan names keeps the plan's limits.
    """
    found: dict[str, dict[str, float | None]] = {}
    planned = (plan.content.get("thresholds") if plan else None) or {}
    for code, values in planned.items():
        if isinstance(values, dict):
            found[code] = {key: _number(values.get(key)) for key in LIMIT_KEYS}
    for row in session.exec(select(Threshold).where(Threshold.patient_id == patient_id)):
        found[row.measurement] = {key: getattr(row, key) for key in LIMIT_KEYS}
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
