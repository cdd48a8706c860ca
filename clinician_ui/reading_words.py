"""Readings as people read them: labels, units, numbers in the page's language, local times,
limits in words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.server.alerts.rules.wording import num
from telekol.server.web import words

# Reading and score codes in the order screens list them, with the words people use.
LABELS = {
    "spo2": "SpO2", "pulse": _l("Pulse"), "resp_rate": _l("Respiratory rate"), "fev1": "FEV1",
    "fvc": "FVC", "pef": _l("Peak flow"), "weight": _l("Weight"),
    "temperature": _l("Temperature"), "bp": _l("Blood pressure"), "cat": _l("CAT score"),
    "symptoms": _l("Symptoms worse than usual"), "copd-symptoms": _l("COPD symptom diary"),
}


def ordered(codes: Any) -> list[str]:
    """Return type codes in screen order; unknown codes last, alphabetically."""
    order = list(LABELS)
    return sorted(codes, key=lambda c: (order.index(c) if c in order else len(order), c))


def label(code: str) -> Any:
    """Return the words for a reading or score code (a patient's plain words on their pages)."""
    return words.label(code) if code in words.LABELS else LABELS.get(code, code)


def unit(code: str) -> str:
    """Return the unit of a reading code in the page's language ("" for scores)."""
    return words.unit(code) if code in MEASUREMENT_TYPES else ""


def decimals(code: str, value: float) -> int:
    """Return how many decimals a value of `code` is shown with (as the alert reasons)."""
    return len(num(code, value).partition(".")[2])


def number(code: str, value: float, places: int | None = None) -> str:
    """Format a value in the page's language: FEV1 1.1 → "1,10" in Danish, "1.10" in English."""
    places = decimals(code, value) if places is None else places
    return format_decimal(value, format="0." + "0" * places if places else "0")


def shown(code: str, point: dict[str, Any]) -> dict[str, Any]:
    """Return a chart point with the value and time as people read them."""
    value = "–" if point["v"] is None else number(code, point["v"])
    if point.get("v2") is not None:
        value = f"{value}/{number(code, point['v2'])}"
    return {**point, "text": f"{value} {unit(code)}".strip(),
            "local": local_time(datetime.fromisoformat(point["t"].replace("Z", "+00:00")))}


def local_time(moment: datetime | None) -> str:
    """Format an instant in Danish local time: "25.11.2026 07:31"."""
    return words.when(moment)


def limit_words(code: str, values: dict[str, float | None]) -> dict[str, Any]:
    """Return a code's limits as "red below 88 %" style phrases."""
    base = "bp" if code in ("bp_sys", "bp_dia") else code
    name = {"bp_sys": _("Systolic blood pressure"),
            "bp_dia": _("Diastolic blood pressure")}.get(code) or str(label(code))

    def amount(value: float) -> str:
        return f"{number(code, value)} {unit(base)}".strip()
    phrases = [(colour, text % {"v": amount(value)}) for colour, key, text in (
        ("red", "red_low", _("red below %(v)s")), ("yellow", "yellow_low", _("yellow below %(v)s")),
        ("yellow", "yellow_high", _("yellow above %(v)s")),
        ("red", "red_high", _("red above %(v)s"))) if (value := values.get(key)) is not None]
    return {"code": code, "label": name, "phrases": phrases}


def limit_order(limits: dict[str, Any]) -> list[str]:
    """Return limit codes in screen order (blood pressure's two after the rest)."""
    order = [*LABELS, "bp_sys", "bp_dia"]
    return sorted(limits, key=lambda c: (order.index(c) if c in order else len(order), c))
