"""Message pages: the clinician's inbox, a patient's two threads, the patient's own thread.

Plain HTML forms (CSRF token, redirect after a successful POST); static/js/messages.js
adds live messages and keeps the nav badge #nav-unread up to date on every page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlmodel import Session, col
from telekol.clinician_ui.blueprint import bp
from telekol.server.care import messages
from telekol.server.care.access import may, visible_patients
from telekol.server.care.contacts import team_contacts
from telekol.server.models import Patient, User
from telekol.server.web.api.messages import publish
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db

LOCAL = ZoneInfo("Europe/Copenhagen")
SHOWN = 200  # the newest messages of a thread shown on its page


@bp.get("/messages")
@login_required
def message_inbox():  # type: ignore[no-untyped-def]
    """List the patients with messages, newest first, with unread counts per thread."""
    user = the_user()
    if user.role == "patient":
        return redirect(url_for("ui.my_messages"))
    session = db()
    rows = messages.overview(session, user)
    with_threads = {row.patient.id for row in rows}
    others = [p for p in session.exec(visible_patients(user).order_by(
        col(Patient.given), col(Patient.family))) if p.id not in with_threads]
    note([*with_threads, *(p.id for p in others)], "search", "Message?_summary=inbox")
    return render_template("message_inbox.html", user=user, rows=[
        {"patient": row.patient, "unread": row.unread, "newest": row.newest,
         "preview": messages.preview(row.newest) if row.newest else "",
         "at": local_time(row.newest.created_at if row.newest else None)} for row in rows],
        others=others)


@bp.route("/patients/<patient_id>/messages", methods=["GET", "POST"], endpoint="messages")
@login_required
def messages_page(patient_id: str):  # type: ignore[no-untyped-def]
    """Show a patient's care-team thread and thread with the patient; post to one."""
    user = the_user()
    if user.role == "patient":  # their own thread only: the team thread is not theirs
        return _threads_page(user, patient_id, ("patient",), "my_messages.html",
                             "ui.my_messages")
    return _threads_page(user, patient_id, ("team", "patient"), "messages.html",
                         "ui.messages")


@bp.route("/me/messages", methods=["GET", "POST"])
@login_required
def my_messages():  # type: ignore[no-untyped-def]
    """Show the signed-in patient's thread with their care team; post to it."""
    user = the_user()
    if user.role != "patient" or not user.patient_id:
        abort(404)
    return _threads_page(user, user.patient_id, ("patient",), "my_messages.html",
                         "ui.my_messages")


def _threads_page(user: User, patient_id: str, channels: tuple[str, ...], template: str,
                  endpoint: str) -> Any:
    session = db()
    try:
        patient = messages.readable_patient(session, user, patient_id, channels[0])
    except messages.ThreadNotFound:
        abort(404)
    problem: dict[str, Any] = {}
    if request.method == "POST":
        channel = request.form.get("channel", "patient")
        if channel not in channels:
            abort(400)
        note(patient_id, "create", f"Message?patient={patient_id}&channel={channel}")
        try:
            message = messages.post(session, user, patient_id, channel, request.form.get("body"))
        except messages.NotAllowed:
            abort(403)
        except messages.InvalidMessage as invalid:
            problem = {"channel": channel, "error": _invalid_text(invalid),
                       "draft": request.form.get("body", "")}
        else:
            publish(session, message, patient)
            target = (url_for(endpoint) if endpoint == "ui.my_messages"
                      else url_for(endpoint, patient_id=patient_id))
            return redirect(f"{target}#thread-{channel}")
    note(patient_id, "read", f"Message?patient={patient_id}")
    threads = [_thread(session, user, patient, channel) for channel in channels]
    session.commit()  # the read marks
    contacts = team_contacts(session, patient.id) if user.role == "patient" else {}
    page = render_template(template, user=user, patient=patient, threads=threads,
                           problem=problem, max_body=messages.MAX_BODY, contacts=contacts)
    return (page, 400) if problem else page


def _thread(session: Session, user: User, patient: Patient, channel: str) -> dict[str, Any]:
    # Opening a thread marks it read up to the newest message shown.
    found = messages.thread(session, user, patient.id, channel, limit=SHOWN)
    if found and found[-1].id:
        messages.mark_read(session, user, patient.id, channel, found[-1].id)
    names = messages.organization_names(session, found)
    return {"channel": channel, "title": thread_title(channel, user),
            "can_post": may(session, user, messages.POST_ACTION[channel], patient.id),
            "messages": [{**messages.message_view(m, patient, names),
                          "local_time": local_time(m.created_at),
                          "mine": m.author_user_id == user.id} for m in found]}


def thread_title(channel: str, user: User) -> str:
    """Return a thread's heading as the reader sees it."""
    if channel == "team":
        return _("Care team")
    return _("My care team") if user.role == "patient" else _("With the patient")


def local_time(moment: datetime | None) -> str:
    """Format an instant in Danish local time (dd.mm.yyyy hh:mm)."""
    return "" if moment is None else f"{moment.astimezone(LOCAL):%d.%m.%Y %H:%M}"


def _invalid_text(invalid: messages.InvalidMessage) -> str:
    if isinstance(invalid, messages.EmptyMessage):
        return _("Write a message before sending.")
    return _("The message is too long (at most %(n)d characters).", n=messages.MAX_BODY)
