"""The readings-over-time block of the clinician's patient page and of the patient's /me: the
period, one chart per measured type (its lines with their limits, the personal baseline, the
alert marks) and the table under it. The script that draws it is js/chart_page.js."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import Session
from telekol.clinician_ui.reading_words import (
    decimals,
    label,
    limit_words,
    local_time,
    number,
    ordered,
    shown,
    unit,
)
from telekol.fhir.codes import MEASUREMENT_TYPES, plausible_range
from telekol.fhir.questionnaire import CAT_SCALE, QUESTIONNAIRES
from telekol.server.alerts.chart_overlays import Overlays, overlays
from telekol.server.alerts.rules.alert_marks import AlertMark
from telekol.server.alerts.rules.personal_baseline import LOWEST_CODES
from telekol.server.care import plan as care_plan
from telekol.server.db import utcnow
from telekol.server.events import instant
from telekol.server.web.api import me as me_api
from telekol.server.web.words import LOCAL

CHART_DAYS = (1, 3, 7, 30, 90)
SEVERITY_RANK = {"red": 3, "yellow": 2, "blue": 1, "green": 0}
SEVERITY_WORDS = {"red": _l("Red"), "yellow": _l("Yellow"), "blue": _l("Blue"),
                  "green": _l("Green")}
# A panel's values drawn as lines of their own: reading code, key in the point, words.
COMPONENTS = {"bp": (("bp_sys", "v", _l("Systolic")), ("bp_dia", "v2", _l("Diastolic")))}
PANEL_OF = {part[0]: panel for panel, parts in COMPONENTS.items() for part in parts}
# What an alert's rule family found, in words (server/alerts/rules/alert_marks.py says which chart).
RULE_WORDS = {"threshold": _l("beyond a limit"), "baseline": _l("change from own level"),
              "weight-gain": _l("weight gain"), "cat-mcid": _l("rise in CAT score"),
              "symptoms": _l("symptoms worse than usual"),
              "missing": _l("measurement missing")}


def chart_days() -> int:
    """Return the chart period asked for in days (1, 3, 7, 30 or 90; 30 otherwise)."""
    days = request.args.get("days", "")
    return int(days) if days in {str(d) for d in CHART_DAYS} else me_api.DEFAULT_DAYS


def period_words(days: int) -> str:
    """Return a period as people say it: "24 hours", "7 days"."""
    return {1: _("24 hours"), 3: _("72 hours")}.get(days) or _("%(n)s days", n=days)


def readings(session: Session, patient_id: str, days: int) -> dict[str, Any]:
    """Return what the readings block shows: latest per type, charts, limits, worst colour."""
    now = utcnow()
    start = now - timedelta(days=days)
    plan = care_plan.current_version(session, patient_id)
    limits = me_api.limits(session, patient_id, plan)
    series = me_api.series(session, patient_id, start)
    latest = me_api.latest(session, patient_id)
    extra = overlays(session, patient_id, start, now, set(series))
    worst = max((p["severity"] for p in latest.values() if p["severity"] in SEVERITY_RANK),
                key=SEVERITY_RANK.__getitem__, default=None)
    return {"days": days, "period": period_words(days), "since": instant(start),
            "until": instant(now), "zone": LOCAL.key,
            "choices": [(d, period_words(d)) for d in CHART_DAYS],
            "charts": [chart(code, series[code], limits, extra) for code in ordered(series)],
            "worst": worst, "plan": plan,
            "latest": [{"code": c, "label": label(c), **shown(c, latest[c])}
                       for c in ordered(latest)]}


def chart(code: str, points: list[dict[str, Any]], limits: dict[str, Any],
          extra: Overlays) -> dict[str, Any]:
    """Return one type's chart: its lines, points (with the baseline), marks and words."""
    base = {instant(p.taken_at): p.value for p in extra.baselines.get(code, [])}
    return {"code": code, "label": str(label(code)), "unit": unit(code),
            "places": decimals(code, 1.0),
            "lines": [line(part, key, words, limits) for part, key, words in parts(code)],
            "points": [with_baseline(code, shown(code, p), base.get(p["t"])) for p in points],
            "baseline": baseline_words(code, extra) if base else None,
            "alerts": [alert_words(m) for m in extra.marks
                       if PANEL_OF.get(m.code, m.code) == code]}


def parts(code: str) -> tuple[tuple[str, str, Any], ...]:
    """Return the lines of a type's chart: (reading code, point key, words)."""
    return COMPONENTS.get(code) or ((code, "v", label(code)),)


def line(code: str, key: str, words: Any, limits: dict[str, Any]) -> dict[str, Any]:
    """Return one line of a chart with the limits in force and its plausible range."""
    found = limits.get(code, {})
    return {"code": code, "key": key, "label": str(words), "limits": found,
            "plausible": plausible(code),
            "phrases": limit_words(code, found)["phrases"] if found else []}


def plausible(code: str) -> list[float] | None:
    """Return the range a value of `code` can have: fhir/codes.py, or a score's 0 to most."""
    if code in MEASUREMENT_TYPES or code in PANEL_OF:
        return list(plausible_range(code))
    for kind in QUESTIONNAIRES.values():
        if kind.type_code == code:
            most = max(CAT_SCALE) if kind.answer_type == "integer" else 1
            return [0, most * len(kind.items)]
    return None


def with_baseline(code: str, point: dict[str, Any], value: float | None) -> dict[str, Any]:
    """Return a point with the baseline it was compared with, as a number and in words."""
    if value is None:
        return point
    places = max(1, decimals(code, float(round(value))))  # a mean: one decimal more at least
    return {**point, "b": round(value, places),
            "b_text": f"{number(code, value, places)} {unit(code)}".strip()}


def baseline_words(code: str, extra: Overlays) -> str:
    """Return what a code's baseline is, with the patient's own window."""
    days = number("days", extra.window_days[code])
    if code in LOWEST_CODES:
        return _("Lowest in the previous %(n)s days", n=days)
    return _("Mean of the previous %(n)s days", n=days)


def alert_words(mark: AlertMark) -> dict[str, Any]:
    """Return an alert mark with its times and what it was, in words."""
    what = str(RULE_WORDS.get(mark.rule.partition(":")[0], mark.rule))
    if mark.code in PANEL_OF:
        what = f"{label_of_part(mark.code)}: {what}"
    colour = str(SEVERITY_WORDS.get(mark.severity, mark.severity))
    text = _("%(colour)s alert: %(what)s", colour=colour, what=what)
    return {"id": mark.alert_id, "line": mark.code, "severity": mark.severity,
            "colour": colour, "text": text, "ack_text": _("Acknowledged: %(what)s", what=text),
            "raised": instant(mark.raised_at), "raised_local": when(mark.raised_at),
            "acknowledged": instant(mark.acknowledged_at),
            "acknowledged_local": when(mark.acknowledged_at)}


def label_of_part(code: str) -> str:
    """Return the words for one line of a panel (e.g. "Systolic")."""
    return next(str(words) for part, _key, words in COMPONENTS[PANEL_OF[code]] if part == code)


def when(moment: datetime | None) -> str | None:
    """Return a local time, None when there is none."""
    return local_time(moment) if moment else None
