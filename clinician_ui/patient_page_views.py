"""The clinician's page for one patient (the hub the care-team pages hang off)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, redirect, render_template, url_for
from flask_login import login_required
from sqlmodel import Session, col, select
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.reading_words import local_time
from telekol.clinician_ui.readings_block import chart_days, readings
from telekol.fhir.cpr import InvalidCPR, birth_date
from telekol.server.care.access import visible_patient
from telekol.server.care.episodes import current_episode
from telekol.server.db import utcnow
from telekol.server.models import MonitoringPause, Organization, Patient
from telekol.server.web.alert_words import alert_words, severity_word
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.words import LOCAL
from telekol.server.worklist.patient_status import status


@bp.get("/patients/<patient_id>")
@login_required
def patient(patient_id: str):  # type: ignore[no-untyped-def]
    """Show one patient: who is responsible, latest readings, charts and open alerts."""
    session, user = db(), the_user()
    if user.role == "patient":  # a patient's view of themselves is /me; others are absent
        if user.patient_id != patient_id:
            abort(404)
        return redirect(url_for("ui.me"))
    found = visible_patient(session, user, patient_id)
    if found is None:
        abort(404)  # as if absent
    days = chart_days()
    context = {**patient_header(found), "responsibility": responsibility(session, patient_id),
               "pause": active_pause(session, patient_id),
               "alerts": open_alerts(session, patient_id),
               "status": status_view(session, patient_id),
               "readings": readings(session, patient_id, days), "tab": "overview"}
    note(patient_id, "read", f"Patient/{patient_id}")
    return render_template("patient.html", **context)


def age(cpr: str, today: date | None = None) -> int | None:
    """Return the age in whole years a CPR number gives, None if it encodes no date."""
    try:
        born = birth_date(cpr)
    except InvalidCPR:
        return None
    today = today or utcnow().astimezone(LOCAL).date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def cpr_shown(cpr: str) -> str:
    """Format a CPR number as DDMMYY-XXXX."""
    return f"{cpr[:6]}-{cpr[6:]}" if len(cpr) == 10 else cpr


def responsibility(session: Session, patient_id: str) -> dict[str, str] | None:
    """Return the names of the current episode's monitoring, treatment and custodian orgs."""
    episode = current_episode(session, patient_id)
    if episode is None:
        return None
    parts = {"monitoring": episode.monitoring_org_id, "treatment": episode.treatment_org_id,
             "custodian": episode.custodian_org_id}
    names = org_names(session, parts.values())
    return {part: names.get(org, org) for part, org in parts.items()}


def org_names(session: Session, ids: Any) -> dict[str, str]:
    """Return organisation names by id."""
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    return dict(session.exec(select(Organization.id, Organization.name).where(
        col(Organization.id).in_(wanted))).all())


def active_pause(session: Session, patient_id: str) -> dict[str, str] | None:
    """Return the pause in force now (until when and why), if monitoring is paused."""
    now = utcnow()
    pause = session.exec(select(MonitoringPause).where(
        MonitoringPause.patient_id == patient_id, col(MonitoringPause.starts_at) <= now,
        col(MonitoringPause.ends_at) > now, col(MonitoringPause.cancelled_at).is_(None))
        .order_by(col(MonitoringPause.ends_at).desc())).first()
    if pause is None:
        return None
    return {"until": local_time(pause.ends_at), "reason": pause.reason}


def open_alerts(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """Return the patient's unresolved alerts in words, the one deciding the status first."""
    found = status(session, patient_id, utcnow())
    return [{"id": a.id, "severity": a.severity, "status": a.status, "count": a.count,
             **alert_words(a), "created": local_time(a.severity_at or a.created_at),
             "last": local_time(a.last_at or a.updated_at)} for a in found.alerts]


def status_view(session: Session, patient_id: str) -> dict[str, Any]:
    """Return the patient's current status (the same truth as the work list) in words."""
    found = status(session, patient_id, utcnow())
    deciding = found.deciding
    return {"shown": found.shown, "word": severity_word(found.shown),
            "severity": found.severity, "severity_word": severity_word(found.severity),
            "why": alert_words(deciding)["deciding"] if deciding else None,
            "acknowledged": bool(deciding and deciding.status == "acknowledged")}


def patient_header(found: Patient) -> dict[str, Any]:
    """Return the header the patient's tab pages show (name, CPR, age)."""
    return {"patient": found, "age": age(found.cpr), "cpr": cpr_shown(found.cpr)}
