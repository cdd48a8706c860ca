"""The patient's own pages: my readings, my care plan, and who has looked at my data."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlmodel import Session
from telekol.clinician_ui import bp
from telekol.clinician_ui.patient_page_views import org_names, responsibility
from telekol.clinician_ui.plan_notes import changes
from telekol.clinician_ui.reading_words import label, limit_order, limit_words, local_time
from telekol.clinician_ui.readings_block import chart_days, readings
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server import audit, care_plan
from telekol.server.access import team_organizations
from telekol.server.db import utcnow
from telekol.server.episodes import current_episode
from telekol.server.models import AuditRecord, CarePlanVersion, Patient, User
from telekol.server.patient_status import status
from telekol.server.web import me_api
from telekol.server.web.alert_words import alert_words, severity_word
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.words import for_patients

PAGE_SIZE = 100
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))
ROLES = {"nurse": _l("Nurse"), "doctor": _l("Doctor"), "gp": _l("General practitioner"),
         "secretary": _l("Secretary"), "admin": _l("Administrator"), "patient": _l("Patient")}
ACTIONS = {"read": _l("looked at"), "search": _l("looked up"), "create": _l("added"),
           "update": _l("changed"), "delete": _l("deleted"), "export": _l("exported")}
RESOURCES = {"Patient": _l("your record"), "Observation": _l("your measurements"),
             "CarePlan": _l("your care plan"), "Message": _l("messages about you"),
             "QuestionnaireResponse": _l("your questionnaire answers"),
             "AuditEvent": _l("who has seen your data"), "Alert": _l("alerts about you"),
             "Consent": _l("your consent"), "EpisodeOfCare": _l("your care team"),
             "CareTeam": _l("your care team"), "Provenance": _l("where your data came from"),
             "ThresholdProposal": _l("a proposed change of your limits"),
             "Flag": _l("the pause of your monitoring")}
# The care plan's limits relative to the patient's own usual values (rule parameters).
RELATIVE = {
    "spo2_daily_drop_points": _l("SpO2 falls by %(v)s points or more from one day to the next"),
    "spo2_baseline_drop_points": _l("SpO2 is %(v)s points or more below your usual level"),
    "weight_gain_kg": _l("your weight rises by %(v)s kg or more"),
    "cat_mcid": _l("your CAT score rises by %(v)s points or more"),
    "symptoms_red_count": _l("%(v)s or more symptoms are worse than usual"),
}
DOORS = {"ui": _l("web page"), "api": _l("app or system (API)"),
         "fhir": _l("health system (FHIR)"), "live": _l("live update"),
         "cli": _l("administration tool"), "export": _l("export")}


def own_patient() -> Patient:
    """Return the signed-in patient's record; anyone else gets 404 (as if absent)."""
    user = the_user()
    found = db().get(Patient, user.patient_id) if user.role == "patient" and \
        user.patient_id else None
    if found is None:
        abort(404)
    return found


@bp.get("/me")
@login_required
def me():  # type: ignore[no-untyped-def]
    """Show the patient their status in words and colour, and their readings over time."""
    patient = own_patient()
    for_patients()  # "iltmætning", not "SpO2"
    block = readings(db(), patient.id, chart_days())
    plan = block["plan"]
    self_care = (plan.content.get("self_care") or {}) if plan else {}
    mine = my_status(db(), patient.id)
    note(patient.id, "read", f"Observation?patient={patient.id}")
    return render_template("me.html", patient=patient, readings=block, status=mine,
                           advice=self_care.get(mine["shown"]) if mine["shown"] in (
                               "yellow", "red") else None,
                           questionnaires=list(QUESTIONNAIRES.values()))


def my_status(session: Session, patient_id: str) -> dict[str, Any]:
    """Return the patient's status as the care team sees it, in the patient's words."""
    found = status(session, patient_id, utcnow())
    deciding = found.deciding
    seen_by = session.get(User, deciding.acknowledged_by) if (
        deciding and deciding.acknowledged_by) else None
    return {"shown": found.shown, "word": severity_word(found.shown),
            "why": alert_words(deciding)["deciding"] if deciding else None,
            "seen_by": seen_by.display_name if seen_by else None,
            "seen_at": local_time(deciding.acknowledged_at) if deciding else "",
            "message": deciding.patient_message if deciding else None}


@bp.get("/me/plan")
@login_required
def my_plan():  # type: ignore[no-untyped-def]
    """Show the patient their care plan in plain language."""
    patient = own_patient()
    session = db()
    plan = care_plan.current_version(session, patient.id)
    note(patient.id, "read", f"CarePlan/{plan.id}" if plan else f"CarePlan?patient={patient.id}")
    seeing = team_organizations(session, [patient.id]).get(patient.id, [])
    return render_template("my_plan.html", patient=patient, plan=plan,
                           team=responsibility(session, patient.id),
                           seeing=sorted(org_names(session, seeing).values()),
                           **(plan_words(session, plan) if plan else {}))


def plan_words(session: Session, plan: CarePlanVersion) -> dict[str, Any]:
    """Return a care plan's parts as sentences and rows a patient can read."""
    content = plan.content
    episode = current_episode(session, plan.patient_id)
    started = episode.started_at if episode else None
    limits = me_api.limits(session, plan.patient_id, plan)
    return {"schedules": [schedule_words(s, started) for s in content.get("schedules") or []
                          if isinstance(s, dict)],
            "limits": [limit_words(code, limits[code]) for code in limit_order(limits)],
            "self_care": content.get("self_care") or {}, "goals": content.get("goals") or [],
            "notes": content.get("notes") or "",
            "relative": [relative_words(k, v) for k, v in (content.get("relative") or {}).items()],
            "changed_by_org": org_names(session, [plan.changed_by_org]).get(
                plan.changed_by_org or "", plan.changed_by_org or ""),
            "changed_at": local_time(plan.changed_at),
            "change": changes(previous.content if (previous := care_plan.version_of(
                session, plan.patient_id, plan.version - 1)) else None, content)}


def relative_words(name: str, value: Any) -> str:
    """Return one relative limit as a sentence ("your weight rises by 2 kg or more")."""
    shown = f"{value:g}" if isinstance(value, int | float) else str(value)
    text = RELATIVE.get(name)
    return str(text) % {"v": shown} if text is not None else f"{name}: {shown}"


def schedule_words(schedule: dict[str, Any], started: datetime | None) -> dict[str, str]:
    """Return one schedule as what, when (times), on which days and in which period."""
    weekdays = [d for d in schedule.get("weekdays") or [] if isinstance(d, int) and 0 <= d <= 6]
    every = int(schedule.get("every_days") or 1)
    days = ", ".join(str(WEEKDAYS[d]) for d in sorted(weekdays)) if weekdays else _("every day")
    if every > 1:
        days = (_("%(days)s, every %(n)s. time", days=days, n=every) if weekdays
                else _("every %(n)s days", n=every))
    return {"what": str(label(schedule.get("code", ""))), "kind": schedule.get("kind", ""),
            "times": ", ".join(schedule.get("times") or []), "days": days,
            "period": period_words(schedule.get("from_day") or 0, schedule.get("to_day"),
                                   started)}


def period_words(from_day: int, to_day: int | None, started: datetime | None) -> str:
    """Return the days of the episode a schedule applies to, as dates when known."""
    if not from_day and to_day is None:
        return ""

    def day(n: int) -> str:
        return local_time(started + timedelta(days=n))[:10] if started else \
            _("day %(n)s", n=n + 1)
    if to_day is None:
        return _("from %(start)s", start=day(from_day))
    return _("from %(start)s to %(end)s", start=day(from_day), end=day(to_day))


@bp.get("/me/access-log")
@login_required
def my_access_log():  # type: ignore[no-untyped-def]
    """Show the patient who has looked at their data, newest first, a page at a time."""
    patient = own_patient()
    before = request.args.get("before", "")
    session = db()
    rows = access_rows(session, patient.id, int(before) if before.isdigit() else None)
    note(patient.id, "read", f"AuditEvent?patient={patient.id}")
    return render_template("access_log.html", patient=patient,
                           entries=access_entries(session, rows),
                           older=rows[-1].id if len(rows) == PAGE_SIZE else None)


def access_rows(session: Session, patient_id: str, before_id: int | None) -> list[AuditRecord]:
    """Return the patient's audit records, newest first, a page at a time."""
    return audit.access_log(session, patient_id, before_id=before_id, limit=PAGE_SIZE)


def access_entries(session: Session, rows: list[AuditRecord]) -> list[dict[str, Any]]:
    """Return audit records in words: when, who, role, organisation, what, door."""
    names = audit.organization_names(session, rows)
    me = the_user()
    return [access_entry(r, names, me.id) for r in rows]


def access_entry(row: AuditRecord, names: dict[str, str], my_user_id: int | None) -> dict[str, Any]:
    """Return one audit record in words."""
    org = names.get(row.organization_id or "", row.organization_id or "")
    kind = audit.resource_kind(row.resource)
    push = row.action == "push" or (row.door == "live" and row.user_id is None)
    if push and row.user_id is not None:  # a connected person's screen
        what = _("was shown a live update")
    elif push:
        what = _("%(org)s was shown a live update", org=org or _("An organisation"))
    elif row.action == "subscribe":
        what = _("started receiving live updates about you")
    else:
        what = f"{ACTIONS.get(row.action, row.action)} {RESOURCES.get(kind, kind)}"
    return {"id": row.id, "when": local_time(row.at), "what": what, "push": push,
            "who": _("You") if row.user_id is not None and row.user_id == my_user_id
            else (row.display_name or row.username or ""),
            "role": ROLES.get(row.role or "", row.role or ""), "organization": org,
            "door": DOORS.get(row.door, row.door), "refused": row.outcome != "success"}
