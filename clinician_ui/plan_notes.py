"""Care-plan words a clinician reads: rule parameters by name, and what each version changed.

A version's stored `summary` is an English machine text (the API's); pages compare a version
with the one before and say what changed in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telekol.server.care.plan_content import LIMITS, SECTIONS
from telekol.server.models import CarePlanVersion
from telekol.server.web.words import label, number, unit

PARAMETERS: dict[str, Any] = {
    "spo2_daily_drop_points": _l("SpO2 fall from yesterday's average"),
    "spo2_baseline_drop_points": _l("SpO2 below the patient's average"),
    "baseline_days": _l("Days in the patient's average"),
    "baseline_min_readings": _l("Readings needed for an average"),
    "fev1_sd_factor": _l("FEV1/FVC below the average, in standard deviations"),
    "weight_gain_kg": _l("Weight gain"),
    "weight_days": _l("Days for the weight gain"),
    "cat_mcid": _l("CAT rise"),
    "symptom_window_hours": _l("Hours that symptom answers count"),
    "symptoms_red_count": _l("Cardinal symptoms for red"),
    "symptom_persist_hours": _l("Hours within which a symptom must come back for yellow"),
    "news2_medium": _l("NEWS2 for yellow"),
    "news2_high": _l("NEWS2 for red"),
    "news2_single": _l("NEWS2 points in one parameter for yellow"),
    "news2_window_minutes": _l("Minutes of one measuring session (NEWS2)"),
    "missing_grace_minutes": _l("Minutes before a planned reading counts as missing"),
    "missing_early_minutes": _l("Minutes before the planned time that still count"),
    "device_silent_hours": _l("Hours before a silent device is reported"),
    "battery_low_percent": _l("Battery level reported as low"),
    "clock_skew_minutes": _l("Minutes a device clock may be fast"),
    "clock_behind_minutes": _l("Minutes a device clock may be slow"),
    "clock_uploads": _l("Uploads in a row that show a slow clock"),
    "rejections_in_a_row": _l("Rejected messages in a row reported"),
    "late_after_minutes": _l("Minutes after which a reading counts as sent late"),
    "auto_resolve_hours": _l("Hours without a repeat before an alert closes by itself"),
}
UNITS: dict[str, Any] = {
    "percentage points": _l("points"), "days": _l("days"), "readings": _l("readings"),
    "SD": "SD", "kg": "kg", "points": _l("points"), "hours": _l("hours"),
    "cardinal symptoms": _l("symptoms"), "minutes": _l("minutes"), "%": "%",
    "uploads": _l("uploads"), "messages": _l("messages"),
}
LIMIT_NAMES: dict[str, Any] = {"red_low": _l("red below"), "yellow_low": _l("yellow below"),
                               "yellow_high": _l("yellow above"), "red_high": _l("red above")}
SECTION_CHANGED: dict[str, Any] = {
    "schedules": _l("measurements and questionnaires changed"),
    "self_care": _l("self-care changed"), "goals": _l("goals changed"),
    "notes": _l("notes changed")}


def parameter_label(name: str) -> str:
    """Return a rule parameter's name in words."""
    found = PARAMETERS.get(name)
    return str(found) if found is not None else name


def parameter_unit(unit_: str) -> str:
    """Return a rule parameter's unit in words."""
    found = UNITS.get(unit_)
    return str(found) if found is not None else unit_


def version_notes(history: Sequence[CarePlanVersion],
                  approvals: Mapping[int, tuple[int | None, str]]) -> dict[int, str]:
    """Return, per version number, what it changed in words (history newest first).

    `approvals` names the proposal a version approved and who made it (version → (id, name)).
    """
    ordered = sorted(history, key=lambda v: v.version)
    notes: dict[int, str] = {}
    for previous, version in zip([None, *ordered], ordered, strict=False):
        text = changes(previous.content if previous else None, version.content)
        if version.version in approvals:
            number, name = approvals[version.version]
            text = _("approved proposal #%(n)s from %(name)s: %(changes)s", n=number, name=name,
                     changes=text)
        notes[version.version] = text
    return notes


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Return what changed between two versions' content ("first version" without an old)."""
    if old is None:
        return _("first version")
    parts: list[str] = []
    for section in SECTIONS:
        if old.get(section) == new.get(section):
            continue
        if section == "thresholds":
            parts += _limit_changes(old.get(section) or {}, new.get(section) or {})
        elif section == "relative":
            parts += _relative_changes(old.get(section) or {}, new.get(section) or {})
        else:
            parts.append(str(SECTION_CHANGED[section]))
    return "; ".join(parts) or _("no changes")


def _limit_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    found = []
    for code in sorted(set(old) | set(new)):
        before, after = old.get(code) or {}, new.get(code) or {}
        steps = [f"{LIMIT_NAMES[name]} {_value(code, before.get(name))} → "
                 f"{_value(code, after.get(name))}"
                 for name in LIMITS if before.get(name) != after.get(name)]
        if steps:
            found.append(f"{label(code)}: {', '.join(steps)}")
    return found


def _relative_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{parameter_label(name)} {_value('', old.get(name))} → {_value('', new.get(name))}"
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def _value(code: str, value: float | None) -> str:
    if value is None:
        return _("none")
    return f"{number(value, code)} {unit(code)}".strip()
