"""The JSON door at /api used by the dashboard and by integrations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from sqlalchemy import func
from sqlmodel import col, select
from telekol.server import events
from telekol.server.alerts import inbox
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.care.access import visible_patient_ids, visible_patients
from telekol.server.db import utcnow
from telekol.server.models import Alert, Device, Observation, Patient, QuarantinedMessage
from telekol.server.web.alert_words import alert_words
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live
from telekol.server.worklist.patient_status import PatientStatus, statuses

bp = Blueprint("api", __name__, url_prefix="/api")
_INSTANT_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})\Z")


def error(message: str, status: int) -> tuple[Response, int]:
    """Return a JSON error body with `status`."""
    return jsonify(error=message), status


@bp.get("/alerts")
@login_required
def alerts():  # type: ignore[no-untyped-def]
    """List alerts the user may see, after `since`.

    `since=<alert id>` returns alerts created after that id (new ones only);
    `since=<RFC 3339 instant>` returns every alert changed at or after it (created, updated,
    acknowledged, snoozed, reopened, escalated, resolved), oldest change first.
    """
    query = select(Alert).where(
        col(Alert.patient_id).in_(visible_patient_ids(the_user()).scalar_subquery()))
    since = request.args.get("since", "").strip().replace(" ", "+")
    limit = min(int(request.args.get("limit", "500")) if request.args.get(
        "limit", "").isdigit() else 500, 5000)
    if since.isdigit():
        after = min(int(since), 2**62)  # beyond any id; keeps PostgreSQL's bigint happy
        query = query.where(col(Alert.id) > after).order_by(col(Alert.id))
    elif since:
        if not _INSTANT_RE.match(since):
            return error("since must be an alert id or an RFC 3339 instant with offset", 400)
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            return error(f"since {since!r} is not a real instant", 400)
        # Changed at or after `since` (created, acknowledged, resolved), oldest first.
        query = query.where(col(Alert.updated_at) >= moment).order_by(
            col(Alert.updated_at), col(Alert.id))
    else:  # no cursor: the most recent alerts
        latest = query.order_by(col(Alert.id).desc()).limit(limit)
        rows = list(reversed(db().exec(latest).all()))
        return _alert_list(rows)
    return _alert_list(db().exec(query.limit(limit)).all())


def _alert_list(rows: list[Alert] | Any) -> Any:
    rows = list(rows)
    patients = _patients({row.patient_id for row in rows})
    note([row.patient_id for row in rows], "search", "Alert")
    return jsonify([with_words(alert_lifecycle.alert_view(db(), row, patients[row.patient_id]))
                    for row in rows])


def with_words(view: dict[str, Any]) -> dict[str, Any]:
    """Add the reader's-language texts to an alert (`reason` stays the English machine text):
    `reason_text` says why it has its severity, `latest_text` what its newest reading was."""
    words = alert_words(view)
    return {**view, "reason_text": words["deciding"], "latest_text": words["latest"]}


@bp.post("/alerts/<int:alert_id>/acknowledge")
@login_required
def acknowledge_alert(alert_id: int):  # type: ignore[no-untyped-def]
    """Acknowledge an alert (JSON {"note": "...", "patient_message": "..."}, both optional;
    the patient sees `patient_message` on their own alerts); every screen updates."""
    body = request.get_json(silent=True) or {}
    message = body.get("patient_message") if isinstance(body, dict) else None
    if message is not None and (not isinstance(message, str)
                                or len(message) > alert_lifecycle.MAX_NOTE):
        return error(f"patient_message must be a string of at most "
                     f"{alert_lifecycle.MAX_NOTE} characters", 400)
    return _transition(lambda session, user, alert_id, note: alert_lifecycle.acknowledge(
        session, user, alert_id, note, patient_message=message), alert_id)


@bp.post("/alerts/<int:alert_id>/snooze")
@login_required
def snooze_alert(alert_id: int):  # type: ignore[no-untyped-def]
    """Snooze an alert (JSON {"minutes": 1..1440, "reason": "..."}); reopened when it ends."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("the body must be a JSON object with minutes and reason", 400)
    return _transition(lambda session, user, alert_id, note: alert_lifecycle.snooze(
        session, user, alert_id, body.get("minutes"), body.get("reason")), alert_id)


@bp.post("/patients/<patient_id>/alerts/acknowledge")
@login_required
def acknowledge_patient_alerts(patient_id: str):  # type: ignore[no-untyped-def]
    """Acknowledge all of a patient's open or snoozed alerts the user's organisation acts on,
    with one note (JSON {"note", "patient_message"}, both optional); return them."""
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):  # a list would leave both texts unset
        return error("the body must be a JSON object with note and patient_message", 400)
    texts = {k: body.get(k) for k in ("note", "patient_message")}
    if any(v is not None and (not isinstance(v, str) or len(v) > alert_lifecycle.MAX_NOTE)
           for v in texts.values()):
        return error(f"note and patient_message must be strings of at most "
                     f"{alert_lifecycle.MAX_NOTE} characters", 400)
    session = db()
    try:
        done = alert_lifecycle.acknowledge_all(session, the_user(), patient_id, texts["note"],
                                               patient_message=texts["patient_message"])
    except alert_lifecycle.AlertNotFound:
        return error("no such patient", 404)
    except alert_lifecycle.TransitionRefused as refused:
        return error(str(refused), 403)
    note(patient_id, "update", f"Alert?patient={patient_id}")
    published = [alert_lifecycle.live_event(session, alert) for alert in done]
    session.commit()
    push_live(published)
    return jsonify([with_words(event["data"]) for event in published])


@bp.get("/alerts/<int:alert_id>/history")
@login_required
def alert_history(alert_id: int):  # type: ignore[no-untyped-def]
    """List an alert's transitions (who or what, when, note), oldest first."""
    try:
        transitions = alert_lifecycle.history(db(), the_user(), alert_id)
    except alert_lifecycle.AlertNotFound:
        return error(f"alert {alert_id} is not known", 404)
    alert = db().get(Alert, alert_id)
    note(alert.patient_id if alert else None, "read", f"Alert/{alert_id}/history")
    return jsonify(transitions)


@bp.post("/alerts/<int:alert_id>/resolve")
@login_required
def resolve_alert(alert_id: int):  # type: ignore[no-untyped-def]
    """Resolve an alert (JSON body {"note": "..."} optional); every screen updates."""
    return _transition(alert_lifecycle.resolve, alert_id)


def _transition(change: Any, alert_id: int) -> Any:
    body = request.get_json(silent=True) or {}
    text = body.get("note") if isinstance(body, dict) else None
    if text is not None and not isinstance(text, str):
        return error("note must be a string", 400)
    session = db()
    try:
        alert = change(session, the_user(), alert_id, text)
    except alert_lifecycle.AlertNotFound:
        return error(f"alert {alert_id} is not known", 404)
    except alert_lifecycle.InvalidRequest as invalid:
        return error(str(invalid), 400)
    except alert_lifecycle.NotResponsible as refused:
        return error(str(refused), 403)
    except alert_lifecycle.TransitionRefused as refused:
        return error(str(refused), 409)
    note(alert.patient_id, "update", f"Alert/{alert_id}")
    event = alert_lifecycle.live_event(session, alert)
    session.commit()
    push_live([event])
    return jsonify(with_words(event["data"]))


@bp.get("/inbox")
@login_required
def inbox_items():  # type: ignore[no-untyped-def]
    """List the red alerts in the user's organisation's inbox, newest first."""
    items = inbox.items(db(), the_user())
    note([item["alert"]["patient"]["id"] for item in items], "search", "InboxItem")
    return jsonify([{**item, "alert": with_words(item["alert"])} for item in items])


@bp.get("/inbox/unread-count")
@login_required
def inbox_unread():  # type: ignore[no-untyped-def]
    """Return {"unread": n} for the user's organisation's inbox."""
    return jsonify(unread=inbox.unread(db(), the_user()))


@bp.post("/inbox/<int:item_id>/read")
@login_required
def inbox_read(item_id: int):  # type: ignore[no-untyped-def]
    """Mark an inbox item read for the whole organisation; return it."""
    session = db()
    try:
        row = inbox.mark_read(session, the_user(), item_id, utcnow())
    except inbox.ItemNotFound:
        return error(f"inbox item {item_id} is not known", 404)
    session.commit()
    rendered = inbox.render(session, row)
    note(rendered["alert"]["patient"]["id"], "update", f"InboxItem/{item_id}")
    return jsonify(rendered)


@bp.get("/patients")
@login_required
def patients():  # type: ignore[no-untyped-def]
    """List the user's patients with their status (as on the work list), latest reading per
    type and open alerts."""
    rows = db().exec(visible_patients(the_user()).order_by(col(Patient.family))).all()
    ids = [p.id for p in rows]
    note(ids, "search", "Patient")
    latest, found = _latest_readings(ids), statuses(db(), ids, utcnow())
    return jsonify([_patient_summary(p, latest.get(p.id, []), found[p.id]) for p in rows])


def _latest_readings(patient_ids: list[str]) -> dict[str, list[Observation]]:
    # One query for every patient: the newest Observation per patient and type.
    newest = func.row_number().over(partition_by=(Observation.patient_id, Observation.type_code),
                                    order_by=col(Observation.effective).desc()).label("rank")
    ranked = select(Observation.id, newest).where(
        col(Observation.patient_id).in_(patient_ids)).subquery()
    query = select(Observation).join(ranked, ranked.c.id == Observation.id).where(
        ranked.c.rank == 1)
    found: dict[str, list[Observation]] = {}
    for row in db().exec(query):
        found.setdefault(row.patient_id, []).append(row)
    return found


def _patient_summary(patient: Patient, latest: list[Observation],
                     status: PatientStatus) -> dict[str, Any]:
    deciding = status.deciding
    return {**events.patient_ref(patient),
            "latest": {row.type_code: events.observation_payload(row, patient) for row in latest},
            "open_alerts": len([a for a in status.alerts if a.status != "snoozed"]),
            # The same status as the work list, the patient page and /me: "paused" while
            # monitoring is paused, else the worst open or acknowledged alert, else green.
            "status": status.shown, "severity": status.severity, "paused": status.paused,
            "unacknowledged": status.unacknowledged,
            "deciding_alert": deciding.id if deciding else None,
            "reason": (deciding.severity_reason or deciding.reason) if deciding else None,
            "reason_text": alert_words(deciding)["deciding"] if deciding else None}


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
    # A rejected payload from a patient's device may hold that patient's readings.
    devices = {r.device_id for r in rows if r.device_id}
    owners = db().exec(select(Device.patient_id).where(col(Device.id).in_(devices))).all()
    note([owner for owner in owners if owner], "read", "QuarantinedMessage")
    return jsonify([{"id": r.id, "received_at": events.instant(r.received_at), "topic": r.topic,
                     "device_id": r.device_id, "msg_id": r.msg_id, "errors": r.errors,
                     "size": r.size if r.size is not None else len(r.payload),
                     "sha256": r.sha256,
                     "payload": r.payload[:4096].decode("utf-8", "replace")} for r in rows])
