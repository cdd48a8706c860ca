"""The care plan in words for the pages, and the edit form's fields to plan content and back.

Form field names: thresholds `t-<code>-<limit>`, relative limits `r-<parameter>`, schedule
rows `s-<i>-code` ("measurement:spo2"), `s-<i>-times` ("09:00 17:00"), `s-<i>-wd-<0..6>`,
`s-<i>-every`, `s-<i>-from`, `s-<i>-to` (and `s-rows`, how many rows the form has),
self-care `sc-<colour>`, `goals` (one per line) and `notes`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from babel.dates import get_day_names
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telekol.server.alerts.escalation import TIMEZONE
from telekol.server.alerts.rules.parameters import DEFAULTS
from telekol.server.alerts.rules.wording import unit
from telekol.server.care.plan_content import LIMITS, THRESHOLD_CODES, CarePlanContent

CODE_LABELS = {
    "spo2": _l("SpO2"), "pulse": _l("Pulse"), "resp_rate": _l("Respiratory rate"),
    "fev1": _l("FEV1"), "fvc": _l("FVC"), "pef": _l("Peak flow"), "weight": _l("Weight"),
    "temperature": _l("Temperature"), "bp": _l("Blood pressure"),
    "bp_sys": _l("Blood pressure, systolic"), "bp_dia": _l("Blood pressure, diastolic"),
    "cat": _l("CAT questionnaire"), "symptoms": _l("Symptom diary"),
}
# name, default, unit: every rule parameter a plan may set relative to the group default.
PARAMETER_DEFAULTS = [(name, value, unit_) for name, value, unit_, _source in DEFAULTS]
SCHEDULE_ROWS_SPARE = 2
MAX_ROWS = 40
SELF_CARE = ("green", "yellow", "red")


def code_label(code: str) -> str:
    """Return the label of a measurement or questionnaire code in the page's language."""
    return str(CODE_LABELS.get(code, code))


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def plan_words(content: CarePlanContent) -> dict[str, Any]:
    """Return the plan's sections as rows and sentences for the page."""
    days = get_day_names("abbreviated", locale=str(get_locale()))
    return {
        "schedules": [{"code": e.code, "kind": e.kind, "label": code_label(e.code),
                       "times": ", ".join(e.times), "days": _days(e, days),
                       "period": _period(e.from_day, e.to_day)} for e in content.schedules],
        "thresholds": [{"code": code, "label": code_label(code), "unit": unit(code),
                        **{name: _num(getattr(limits, name)) for name in LIMITS}}
                       for code, limits in content.thresholds.items()],
        "relative": [{"name": name, "value": _num(content.relative[name]), "unit": unit_,
                      "default": _num(default)}
                     for name, default, unit_ in PARAMETER_DEFAULTS if name in content.relative],
        "self_care": content.self_care.model_dump(), "goals": content.goals,
        "notes": content.notes,
    }


def _days(entry: Any, names: Mapping[int, str]) -> str:
    parts = []
    if entry.weekdays:
        parts.append(", ".join(names[d] for d in entry.weekdays))
    if entry.every_days > 1:
        parts.append(_("every %(n)s days", n=entry.every_days))
    return "; ".join(parts) or _("every day")


def _period(start: int, end: int | None) -> str:
    if start == 0:
        return "" if end is None else _("the first %(n)s days", n=end + 1)
    if end is None:
        return _("after the first %(n)s days", n=start)
    return _("days %(a)s to %(b)s of the episode", a=start + 1, b=end + 1)


def content_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """Return the edit form's field values for stored plan content."""
    fields: dict[str, str] = {}
    for code, limits in data.get("thresholds", {}).items():
        for name in LIMITS:
            fields[f"t-{code}-{name}"] = _num(limits.get(name))
    for name, value in data.get("relative", {}).items():
        fields[f"r-{name}"] = _num(value)
    entries = data.get("schedules", [])
    for i, entry in enumerate(entries):
        fields.update({f"s-{i}-code": f"{entry['kind']}:{entry['code']}",
                       f"s-{i}-times": " ".join(entry["times"]),
                       f"s-{i}-every": str(entry["every_days"]),
                       f"s-{i}-from": str(entry["from_day"]),
                       f"s-{i}-to": "" if entry["to_day"] is None else str(entry["to_day"])})
        fields.update({f"s-{i}-wd-{d}": "on" for d in entry["weekdays"]})
    fields["s-rows"] = str(len(entries) + SCHEDULE_ROWS_SPARE)
    for colour in SELF_CARE:
        fields[f"sc-{colour}"] = data.get("self_care", {}).get(colour, "")
    fields["goals"] = "\n".join(data.get("goals", []))
    fields["notes"] = data.get("notes", "")
    return fields


def content_from_form(form: Mapping[str, str], base: Mapping[str, Any],
                      sections: set[str]) -> dict[str, Any]:
    """Return plan content: `base` with the sections the user may edit read from the form."""
    data = copy.deepcopy(dict(base))
    if "thresholds" in sections:
        found = {code: {name: number(form.get(f"t-{code}-{name}", "")) for name in LIMITS}
                 for code in THRESHOLD_CODES}
        data["thresholds"] = {code: limits for code, limits in found.items()
                              if any(v is not None for v in limits.values())}
    if "relative" in sections:
        data["relative"] = {name: value for name, _d, _u in PARAMETER_DEFAULTS
                            if (value := number(form.get(f"r-{name}", ""))) is not None}
    if "schedules" in sections:
        data["schedules"] = _schedules(form)
    if "self_care" in sections:
        data["self_care"] = {c: form.get(f"sc-{c}", "").strip() for c in SELF_CARE}
    if "goals" in sections:
        data["goals"] = [line.strip() for line in form.get("goals", "").splitlines()
                         if line.strip()]
    if "notes" in sections:
        data["notes"] = form.get("notes", "").strip()
    return data


def _schedules(form: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = number(form.get("s-rows", "")) or 0
    entries = []
    for i in range(min(rows if isinstance(rows, int) else 0, MAX_ROWS)):
        kind, _sep, code = form.get(f"s-{i}-code", "").partition(":")
        if not code:
            continue
        to_day = number(form.get(f"s-{i}-to", ""))
        entries.append({
            "code": code, "kind": kind,
            "times": [t for t in re.split(r"[\s,;]+", form.get(f"s-{i}-times", "")) if t],
            "weekdays": [d for d in range(7) if form.get(f"s-{i}-wd-{d}")],
            "every_days": number(form.get(f"s-{i}-every", "")) or 1,
            "from_day": number(form.get(f"s-{i}-from", "")) or 0,
            "to_day": to_day})
    return entries


def number(raw: str) -> Any:
    """Return a form field as a number, None when empty, else the text (the validator says
    what is wrong with it)."""
    raw = raw.strip().replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return raw
    return int(value) if value.is_integer() else value


def when(moment: Any) -> str:
    """Return an instant (datetime or RFC 3339 text) as local date and time."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return f"{moment.astimezone(TIMEZONE):%d.%m.%Y %H:%M}"


def page_helpers() -> dict[str, Any]:
    """Return what the care plan and proposal templates use to show limits and times."""
    return {"when": when, "num": _num, "code_label": code_label, "limit_names": LIMITS,
            "unit_of": unit, "weekday_names": get_day_names("abbreviated",
                                                            locale=str(get_locale())),
            "limit_label": {"red_low": _("Red below"), "yellow_low": _("Yellow below"),
                            "yellow_high": _("Yellow above"), "red_high": _("Red above")}}
