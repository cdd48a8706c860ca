"""The patient's own pages: my readings and my care plan, with whom to call.

"Who has seen my data" is clinician_ui/access_log_views.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import abort, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlmodel import Session
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.patient_page_views import org_names, responsibility
from telekol.clinician_ui.plan_notes import changes
from telekol.clinician_ui.reading_words import label, limit_order, limit_words, local_time
from telekol.clinician_ui.readings_block import chart_days, readings
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server.care import plan as care_plan
from telekol.server.care.access import team_organizations
from telekol.server.care.contacts import team_contacts
from telekol.server.care.episodes import current_episode
from telekol.server.db import utcnow
from telekol.server.models import CarePlanVersion, Patient, User
from telekol.server.web.alert_words import alert_words, severity_word
from telekol.server.web.api import me as me_api
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.words import for_patients
from telekol.server.worklist.patient_status import status

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))
# The care plan's limits relative to the patient's own usual values (rule parameters).
RELATIVE = {
    "spo2_daily_drop_points": _l("your oxygen saturation (SpO2) falls by %(v)s points or more "
                                 "from one day to the next"),
    "spo2_baseline_drop_points": _l("your oxygen saturation (SpO2) is %(v)s points or more "
                                    "below your usual level"),
    "weight_gain_kg": _l("your weight rises by %(v)s kg or more"),
    "cat_mcid": _l("your CAT score rises by %(v)s points or more"),
    "symptoms_red_count": _l("%(v)s or more symptoms are worse than usual"),
}


# Words a patient uses where the clinician's screens use the abbreviation.
PATIENT_LABELS = {"spo2": _l("Oxygen saturation (SpO2)")}


def patient_label(code: str) -> str:
    """Return the words for a reading code on the patient's own pages."""
    return str(PATIENT_LABELS.get(code) or label(code))


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
                           contacts=team_contacts(db(), patient.id),
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
                           contacts=team_contacts(session, patient.id),
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
            "limits": [{**limit_words(code, limits[code]), **(
                {"label": patient_label(code)} if code in PATIENT_LABELS else {})}
                for code in limit_order(limits)],
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
    return {"what": patient_label(schedule.get("code", "")), "kind": schedule.get("kind", ""),
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
