"""Clinical words in the reader's language: labels, units, numbers, times (Flask-Babel).

Stored data stays structured (codes, numbers, instants); screens turn it into Danish or
English here, at display time, through the translation catalogue. Danish gets a decimal
comma and Danish units ("78 slag/min"); English keeps the API's machine fields untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from flask import g, has_request_context
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

LOCAL = ZoneInfo("Europe/Copenhagen")
# What clinicians call each reading, score and symptom code.
LABELS: dict[str, Any] = {
    "spo2": _l("SpO2"), "pulse": _l("Pulse"), "resp_rate": _l("Respiratory rate"),
    "fev1": _l("FEV1"), "fvc": _l("FVC"), "pef": _l("Peak flow"), "weight": _l("Weight"),
    "temperature": _l("Temperature"), "bp": _l("Blood pressure"),
    "bp_sys": _l("Systolic blood pressure"), "bp_dia": _l("Diastolic blood pressure"),
    "cat": _l("CAT score"), "symptoms": _l("Symptom diary"),
    "copd-symptoms": _l("COPD symptom diary"),
}
# Patients read plain words where clinicians use abbreviations (a page sets
# `g.patient_words = True`, see `for_patients`).
PATIENT_LABELS: dict[str, Any] = {"spo2": _l("oxygen saturation"),
                                  "fev1": _l("lung function (FEV1)"),
                                  "cat": _l("CAT questionnaire score")}
SYMPTOMS: dict[str, Any] = {
    "more_breathless": _l("more breathless than usual"),
    "more_sputum": _l("more sputum than usual"),
    "sputum_colour_changed": _l("changed sputum colour"),
    "more_cough": _l("more cough than usual"),
    "feeling_worse": _l("feeling worse"),
    "swollen_ankles": _l("swollen ankles or legs"),
}
UNITS: dict[str, Any] = {
    "spo2": "%", "pulse": _l("beats/min"), "resp_rate": _l("breaths/min"), "fev1": "L",
    "fvc": "L", "pef": "L/min", "weight": "kg", "temperature": "°C", "bp": "mmHg",
    "bp_sys": "mmHg", "bp_dia": "mmHg", "cat": _l("points"),
}
# Decimals shown per code; the rest show whole numbers, or one decimal when they have one.
PLACES = {"fev1": 2, "fvc": 2, "weight": 1, "temperature": 1}


def locale() -> str:
    """Return the reader's language code ("da" or "en")."""
    return str(get_locale() or "da")


def for_patients() -> None:
    """Use the patient's plain words for the rest of this request ("iltmætning")."""
    g.patient_words = True


def label(code: str) -> str:
    """Return the words for a reading, score or symptom code."""
    plain = has_request_context() and g.get("patient_words", False)
    found = (plain and PATIENT_LABELS.get(code)) or LABELS.get(code) or SYMPTOMS.get(code)
    return str(found) if found is not None else code


def unit(code: str) -> str:
    """Return the unit of a code as people write it ("" when it has none)."""
    found = UNITS.get(code)
    return str(found) if found is not None else ""


def number(value: float | None, code: str = "", places: int | None = None) -> str:
    """Format a number for the reader: 1,25 in Danish, 1.25 in English."""
    if value is None:
        return "–"
    shown = PLACES.get(code) if places is None else places
    if shown is None:
        shown = 0 if float(value).is_integer() else 1
    pattern = "0" if shown == 0 else "0." + "0" * shown
    return format_decimal(value, format=pattern, locale=locale())


def quantity(code: str, value: float | None) -> str:
    """Format a value with its unit: "88 %", "1,25 L", "78 slag/min"."""
    return f"{number(value, code)} {unit(code)}".strip()


def local(moment: datetime | None) -> datetime | None:
    """Return an instant in Danish local time."""
    return moment.astimezone(LOCAL) if moment is not None else None


def when(moment: datetime | None) -> str:
    """Format an instant as local date and time: "02.12.2026 08:10"."""
    found = local(moment)
    return "" if found is None else f"{found:%d.%m.%Y %H:%M}"


def clock(moment: datetime | None) -> str:
    """Format an instant as local time of day: "08:10"."""
    found = local(moment)
    return "" if found is None else f"{found:%H:%M}"


def ago(moment: datetime | None, now: datetime) -> str:
    """Format how long ago an instant was, in words ("for 12 minutter siden")."""
    if moment is None:
        return ""
    return format_timedelta(moment - now, granularity="minute", threshold=1.1,
                            add_direction=True, format="long", locale=locale())


def span(delta: timedelta) -> str:
    """Format a length of time in words ("3 timer")."""
    return format_timedelta(delta, granularity="minute", threshold=1.1, format="long",
                            locale=locale())
