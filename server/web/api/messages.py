"""Messages about a patient on the JSON door: threads, posting, read marks, unread counts.

Care team: `/api/patients/<id>/messages[?channel=team|patient&after=&before=&limit=]`,
`POST` the same with {"channel", "body"}, `POST .../messages/read` with {"channel", "up_to"},
`GET /api/messages/unread` ({"total", "patients": [{"patient", "unread": {"team",
"patient"}}]}) and `/api/messages/unread-count`. The patient: the same under
`/api/me/messages` (their thread with the care team only). Not seen: 404; seen but not
allowed to write: 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask_login import login_required
from telekol.server import events
from telekol.server.care import messages
from telekol.server.models import Message, Patient, User
from telekol.server.web.api.alerts import error
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live

bp = Blueprint("messages_api", __name__, url_prefix="/api")
_STATUS = {messages.ThreadNotFound: 404, messages.NotAllowed: 403, messages.InvalidMessage: 400}


@bp.errorhandler(messages.MessageError)
def _refused(problem: messages.MessageError) -> Any:
    return error(str(problem), _STATUS.get(type(problem), 400))


@bp.get("/patients/<patient_id>/messages")
@login_required
def thread(patient_id: str):  # type: ignore[no-untyped-def]
    """List a page of one of the patient's threads, oldest first."""
    default = "patient" if the_user().role == "patient" else "team"
    return _thread(patient_id, request.args.get("channel", default))


@bp.post("/patients/<patient_id>/messages")
@login_required
def post(patient_id: str):  # type: ignore[no-untyped-def]
    """Write a message in one of the patient's threads."""
    body = _body()
    return _post(patient_id, body.get("channel"), body.get("body"))


@bp.post("/patients/<patient_id>/messages/read")
@login_required
def read(patient_id: str):  # type: ignore[no-untyped-def]
    """Mark one of the patient's threads read up to a message id."""
    body = _body()
    return _read(patient_id, body.get("channel"), body.get("up_to"))


@bp.get("/messages/unread")
@login_required
def unread():  # type: ignore[no-untyped-def]
    """Return the unread counts per patient and thread, and their total."""
    user = the_user()
    rows = [row for row in messages.overview(db(), user) if any(row.unread.values())]
    note([row.patient.id for row in rows], "search", "Message?_summary=unread")
    return jsonify(total=sum(sum(row.unread.values()) for row in rows), patients=[
        {"patient": events.patient_ref(row.patient), "unread": _counts(user, row.unread)}
        for row in rows])


@bp.get("/messages/unread-count")
@login_required
def unread_count():  # type: ignore[no-untyped-def]
    """Return {"total": n}: the unread messages across the user's threads (the nav badge)."""
    # A number that names no patient: not an access to anyone's data, so not audited
    # (every page load asks for it).
    return jsonify(total=messages.unread_total(db(), the_user()))


@bp.get("/me/messages")
@login_required
def my_thread():  # type: ignore[no-untyped-def]
    """List a page of the signed-in patient's thread with their care team."""
    return _thread(_own_patient(), "patient")


@bp.post("/me/messages")
@login_required
def my_post():  # type: ignore[no-untyped-def]
    """Write to the care team as the signed-in patient."""
    return _post(_own_patient(), "patient", _body().get("body"))


@bp.post("/me/messages/read")
@login_required
def my_read():  # type: ignore[no-untyped-def]
    """Mark the signed-in patient's thread read up to a message id."""
    return _read(_own_patient(), "patient", _body().get("up_to"))


@bp.get("/me/messages/unread")
@login_required
def my_unread():  # type: ignore[no-untyped-def]
    """Return {"total": n}: the care team's messages the patient has not read."""
    patient_id = _own_patient()
    note(patient_id, "search", "Message?_summary=unread")
    return jsonify(total=messages.unread_total(db(), the_user()))


def _thread(patient_id: str, channel: str) -> Any:
    session, user = db(), the_user()
    patient = messages.readable_patient(session, user, patient_id, channel)
    after, before, limit = (_number(name) for name in ("after", "before", "limit"))
    note(patient_id, "read", f"Message?patient={patient_id}&channel={channel}")
    found = messages.thread(session, user, patient_id, channel, after=after, before=before,
                            limit=limit or messages.PAGE)
    return jsonify(channel=channel, messages=_views(found, patient))


def _post(patient_id: str, channel: Any, body: Any) -> Any:
    session, user = db(), the_user()
    patient = messages.readable_patient(session, user, patient_id, str(channel))
    note(patient_id, "create", f"Message?patient={patient_id}&channel={channel}")
    message = messages.post(session, user, patient_id, str(channel), body)
    publish(session, message, patient)
    return jsonify(_views([message], patient)[0]), 201


def _read(patient_id: str, channel: Any, up_to: Any) -> Any:
    session, user = db(), the_user()
    messages.readable_patient(session, user, patient_id, str(channel))
    if isinstance(up_to, bool) or not isinstance(up_to, int) or up_to < 0:
        return error("up_to must be a message id", 400)
    note(patient_id, "update", f"MessageReadMark?patient={patient_id}&channel={channel}")
    mark = messages.mark_read(session, user, patient_id, str(channel), up_to)
    session.commit()
    return jsonify(last_read_id=mark, total=messages.unread_total(session, user))


def publish(session: Any, message: Message, patient: Patient) -> None:
    """Commit the message, then announce it live to the rooms that may read it."""
    event = messages.live_event(session, message, patient)
    session.commit()
    push_live([event])


def _views(found: list[Message], patient: Patient) -> list[dict[str, Any]]:
    names = messages.organization_names(db(), found)
    return [messages.message_view(m, patient, names) for m in found]


def _counts(user: User, unread: dict[str, int]) -> dict[str, int]:
    # A patient never learns that a team thread exists, not even as a zero.
    return {"patient": unread["patient"]} if user.role == "patient" else dict(unread)


def _own_patient() -> str:
    user = the_user()
    if user.role != "patient" or not user.patient_id:
        raise messages.ThreadNotFound("only patients have their own messages")
    return user.patient_id


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise messages.InvalidMessage("the body must be a JSON object")
    return body


def _number(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise messages.InvalidMessage(f"{name} must be a non-negative whole number")
    return min(int(raw), 2**62)  # beyond any id; keeps PostgreSQL's bigint happy
