"""The clinician's page for one patient (the hub the care-team pages hang off), and the
readings-over-time block it shares with the patient's own page."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlmodel import Session, col, select
from telekol.clinician_ui import bp
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.cpr import InvalidCPR, birth_date
from telekol.server import care_plan
from telekol.server.access import visible_patient
from telekol.server.db import utcnow
from telekol.server.episodes import current_episode
from telekol.server.models import MonitoringPause, Organization, Patient
from telekol.server.patient_status import status
from telekol.server.rules.wording import num
from telekol.server.web import me_api
from telekol.server.web.alert_words import alert_words, severity_word
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db

LOCAL = ZoneInfo("Europe/Copenhagen")
CHART_DAYS = (7, 30, 90)
SEVERITY_RANK = {"red": 3, "yellow": 2, "blue": 1, "green": 0}
# Reading and score codes in the order screens list them, with the words people use.
LABELS = {
    "spo2": "SpO2", "pulse": _l("Pulse"), "resp_rate": _l("Respiratory rate"), "fev1": "FEV1",
    "fvc": "FVC", "pef": _l("Peak flow"), "weight": _l("Weight"),
    "temperature": _l("Temperature"), "bp": _l("Blood pressure"), "cat": _l("CAT score"),
    "symptoms": _l("Symptoms worse than usual"), "copd-symptoms": _l("COPD symptom diary"),
}


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


def chart_days() -> int:
    """Return the chart period asked for (7, 30 or 90 days; 30 otherwise)."""
    days = request.args.get("days", "")
    return int(days) if days in {str(d) for d in CHART_DAYS} else me_api.DEFAULT_DAYS


def readings(session: Session, patient_id: str, days: int) -> dict[str, Any]:
    """Return what the readings block shows: latest per type, series, limits, worst colour."""
    plan = care_plan.current_version(session, patient_id)
    limits = me_api.limits(session, patient_id, plan)
    series = me_api.series(session, patient_id, utcnow() - timedelta(days=days))
    latest = me_api.latest(session, patient_id)
    charts = [{"code": code, "label": str(label(code)), "unit": unit(code),
               "points": [shown(code, p) for p in series[code]],
               "limits": limits.get(code, {}),
               "phrases": limit_words(code, limits[code])["phrases"] if code in limits else []}
              for code in ordered(series)]
    worst = max((p["severity"] for p in latest.values() if p["severity"] in SEVERITY_RANK),
                key=SEVERITY_RANK.__getitem__, default=None)
    return {"days": days, "choices": CHART_DAYS, "charts": charts, "worst": worst,
            "latest": [{"code": c, "label": label(c), **shown(c, latest[c])}
                       for c in ordered(latest)], "plan": plan}


def ordered(codes: Any) -> list[str]:
    """Return type codes in screen order; unknown codes last, alphabetically."""
    order = list(LABELS)
    return sorted(codes, key=lambda c: (order.index(c) if c in order else len(order), c))


def label(code: str) -> Any:
    """Return the words for a reading or score code."""
    return LABELS.get(code, code)


def unit(code: str) -> str:
    """Return the display unit of a reading code ("" for scores)."""
    kind = MEASUREMENT_TYPES.get(code)
    return kind.unit_display if kind else ""


def shown(code: str, point: dict[str, Any]) -> dict[str, Any]:
    """Return a chart point with the value and time as people read them."""
    value = "–" if point["v"] is None else num(code, point["v"])
    if point.get("v2") is not None:
        value = f"{value}/{num(code, point['v2'])}"
    return {**point, "text": f"{value} {unit(code)}".strip(),
            "local": local_time(datetime.fromisoformat(point["t"].replace("Z", "+00:00")))}


def local_time(moment: datetime | None) -> str:
    """Format an instant in Danish local time: "25.11.2026 07:31"."""
    return "" if moment is None else f"{moment.astimezone(LOCAL):%d.%m.%Y %H:%M}"


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


def limit_words(code: str, values: dict[str, float | None]) -> dict[str, Any]:
    """Return a code's limits as "red below 88 %" style phrases."""
    base = "bp" if code in ("bp_sys", "bp_dia") else code
    name = {"bp_sys": _("Systolic blood pressure"),
            "bp_dia": _("Diastolic blood pressure")}.get(code) or str(label(code))

    def amount(value: float) -> str:
        return f"{num(code, value)} {unit(base)}".strip()
    phrases = [(colour, text % {"v": amount(value)}) for colour, key, text in (
        ("red", "red_low", _("red below %(v)s")), ("yellow", "yellow_low", _("yellow below %(v)s")),
        ("yellow", "yellow_high", _("yellow above %(v)s")),
        ("red", "red_high", _("red above %(v)s"))) if (value := values.get(key)) is not None]
    return {"code": code, "label": name, "phrases": phrases}


def limit_order(limits: dict[str, Any]) -> list[str]:
    """Return limit codes in screen order (blood pressure's two after the rest)."""
    order = [*LABELS, "bp_sys", "bp_dia"]
    return sorted(limits, key=lambda c: (order.index(c) if c in order else len(order), c))
