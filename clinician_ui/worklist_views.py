"""The clinician's start page: the triage work list, its live row updates and alert actions.

The page is rendered on the server (first rows at once, also without JavaScript); the
script (static/js/worklist.js) asks `/worklist/rows` for the rows a live event touched and
swaps only those. Acting on alerts posts forms here; a script gets the patient's redrawn
row back, a plain browser is sent back to the list.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_login import login_required
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.worklist_words import row_view
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.care.access import acts_on_alerts, visible_patient
from telekol.server.db import utcnow
from telekol.server.models import Alert, Organization, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live
from telekol.server.worklist.details import details_for
from telekol.server.worklist.rows import FILTERS, WorklistQuery, rows_for, worklist

MAX_ROWS_ASKED = 100


@bp.get("/")
@login_required
def dashboard():  # type: ignore[no-untyped-def]
    """Show the user's work list: the patients who need someone most, first."""
    user = the_user()
    if user.role == "patient":
        return redirect(url_for("ui.me"))  # a patient's start page is their own
    if user.role == "admin":
        return redirect(url_for("ui.admin_users"))  # administrators see no patients
    now = utcnow()
    query = WorklistQuery.parse(request.args.to_dict(flat=False))
    page = worklist(db(), user, query, now)
    found = details_for(db(), page.rows, now)
    note([r.patient.id for r in page.rows], "search", "Patient")
    organization = db().get(Organization, user.organization_id) if user.organization_id else None
    return render_template("worklist.html", user=user, organization=organization, page=page,
                           rows=[row_view(r, found, now, user) for r in page.rows],
                           filters=FILTERS, viewer=_viewer(user, organization), compact=True)


@bp.get("/worklist/rows")
@login_required
def worklist_rows():  # type: ignore[no-untyped-def]
    """Return the named patients' rows as they are now (a live update), or without `ids`
    the rows of the page the query names (catching up after a reconnect)."""
    user = the_user()
    if user.role in ("patient", "admin"):
        abort(404)
    ids = [i for i in request.args.get("ids", "").split(",") if i][:MAX_ROWS_ASKED]
    return _rows(user, ids or None)


def _rows(user: User, ids: list[str] | None) -> str:
    now = utcnow()
    query = WorklistQuery.parse(request.args.to_dict(flat=False))
    rows = rows_for(db(), user, ids, now) if ids else worklist(db(), user, query, now).rows
    found = details_for(db(), rows, now)
    note([r.patient.id for r in rows], "read", "Patient")
    return render_template("_worklist_rows.html", rows=[
        {**row_view(r, found, now, user), "match": r.matches(query)} for r in rows])


@bp.post("/patients/<patient_id>/alerts/acknowledge")
@login_required
def acknowledge_patient(patient_id: str):  # type: ignore[no-untyped-def]
    """Acknowledge all of a patient's alerts the user's organisation acts on, one note."""
    return _act(patient_id, lambda session, user: alert_lifecycle.acknowledge_all(
        session, user, patient_id, request.form.get("note"),
        patient_message=request.form.get("patient_message") or None))


@bp.post("/alerts/<int:alert_id>/<action>")
@login_required
def act_on_alert(alert_id: int, action: str):  # type: ignore[no-untyped-def]
    """Acknowledge, snooze or resolve one alert from the work list."""
    found = db().get(Alert, alert_id)
    if found is None or action not in ("acknowledge", "snooze", "resolve"):
        abort(404)
    form = request.form

    def change(session: Any, user: User) -> list[Any]:
        if action == "acknowledge":
            return [alert_lifecycle.acknowledge(session, user, alert_id, form.get("note"),
                                                patient_message=form.get("patient_message")
                                                or None)]
        if action == "snooze":
            minutes = form.get("minutes", "")
            return [alert_lifecycle.snooze(session, user, alert_id,
                                           int(minutes) if minutes.isdigit() else minutes,
                                           form.get("reason"))]
        return [alert_lifecycle.resolve(session, user, alert_id, form.get("note"))]

    return _act(found.patient_id, change)


def _act(patient_id: str, change: Any) -> Any:
    session, user = db(), the_user()
    if visible_patient(session, user, patient_id) is None:
        abort(404)
    try:
        changed = change(session, user)
    except alert_lifecycle.AlertNotFound:
        abort(404)
    except alert_lifecycle.InvalidRequest as invalid:
        return str(invalid), 400
    except alert_lifecycle.NotResponsible as refused:
        return str(refused), 403
    except alert_lifecycle.TransitionRefused as refused:
        return str(refused), 409
    note(patient_id, "update", f"Alert?patient={patient_id}")
    events = [alert_lifecycle.live_event(session, alert) for alert in changed]
    session.commit()
    push_live(events)
    if request.headers.get("X-Requested-With") == "fetch":
        return _rows(user, [patient_id])
    return redirect(request.referrer if _local(request.referrer) else url_for("ui.dashboard"))


def _local(target: str | None) -> bool:
    return bool(target) and (target or "").startswith(request.host_url)


def _viewer(user: User, organization: Organization | None) -> dict[str, Any]:
    # What the script needs to know about the person looking: which red alerts to sound for.
    return {"organization": organization.id if organization else None,
            "can_act": acts_on_alerts(user),
            "inbox": bool(organization and organization.kind == "gp")}
