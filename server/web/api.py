"""The JSON door at /api used by the dashboard and by integrations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from sqlmodel import col, select
from telekol.server import events
from telekol.server.access import visible_patient_ids, visible_patients
from telekol.server.models import Alert, Observation, Patient, QuarantinedMessage
from telekol.server.web.auth import the_user
from telekol.server.web.context import db

bp = Blueprint("api", __name__, url_prefix="/api")
_INSTANT_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})\Z")


def error(message: str, status: int) -> tuple[Response, int]:
    """Return a JSON error body with `status`."""
    return jsonify(error=message), status


@bp.get("/alerts")
@login_required
def alerts():  # type: ignore[no-untyped-def]
    """List alerts the user may see, after `since` (an alert id or an RFC 3339 instant)."""
    query = select(Alert).where(
        col(Alert.patient_id).in_(visible_patient_ids(the_user()).scalar_subquery()))
    since = request.args.get("since", "").strip().replace(" ", "+")
    if since.isdigit():
        query = query.where(col(Alert.id) > int(since))
    elif since:
        if not _INSTANT_RE.match(since):
            return error("since must be an alert id or an RFC 3339 instant with offset", 400)
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        query = query.where(col(Alert.updated_at) > moment)
    limit = min(int(request.args.get("limit", "500")) if request.args.get(
        "limit", "").isdigit() else 500, 5000)
    rows = db().exec(query.order_by(col(Alert.id)).limit(limit)).all()
    patients = _patients({row.patient_id for row in rows})
    return jsonify([events.alert_payload(row, patients[row.patient_id]) for row in rows])


@bp.get("/patients")
@login_required
def patients():  # type: ignore[no-untyped-def]
    """List the user's patients with their latest reading per type and open alerts."""
    rows = db().exec(visible_patients(the_user()).order_by(col(Patient.family))).all()
    return jsonify([_patient_summary(p) for p in rows])


def _patient_summary(patient: Patient) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    query = (select(Observation).where(Observation.patient_id == patient.id)
             .order_by(col(Observation.effective).desc()).limit(50))
    for row in db().exec(query):
        latest.setdefault(row.type_code, events.observation_payload(row, patient))
    open_alerts = db().exec(select(Alert).where(Alert.patient_id == patient.id,
                                                Alert.status == "open")).all()
    worst = max((a.severity for a in open_alerts), key=lambda s: s == "red", default=None)
    return {**events.patient_ref(patient), "latest": latest, "open_alerts": len(open_alerts),
            "status": worst or "green"}


def _patients(ids: set[str]) -> dict[str, Patient]:
    rows = db().exec(select(Patient).where(col(Patient.id).in_(ids))).all()
    return {p.id: p for p in rows}


@bp.get("/quarantine")
@login_required
def quarantine():  # type: ignore[no-untyped-def]
    """List rejected payloads with their reasons (administrators only)."""
    if the_user().role != "admin":
        return error("administrators only", 403)
    rows = db().exec(select(QuarantinedMessage).order_by(
        col(QuarantinedMessage.id).desc()).limit(200)).all()
    return jsonify([{"id": r.id, "received_at": events.instant(r.received_at), "topic": r.topic,
                     "device_id": r.device_id, "msg_id": r.msg_id, "errors": r.errors,
                     "payload": r.payload[:4096].decode("utf-8", "replace")} for r in rows])
