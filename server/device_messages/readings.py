"""Validate the `readings` list of one measurement object (contract §3), pure.

Each problem is appended to `errors` as one English sentence naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from telekol.fhir.codes import READING_CODES, plausible_range
from telekol.fhir.units import UnitError, canonical_unit, to_canonical

MAX_READINGS = 16
_READING_KEYS = frozenset({"code", "value", "unit"})


@dataclass(frozen=True)
class Reading:
    """One value in the canonical unit of its code."""

    code: str
    value: float
    unit: str


def parse_readings(items: Any, errors: list[str]) -> tuple[Reading, ...]:
    """Return the valid readings of a `readings` value, appending every problem to errors."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_READINGS:
        errors.append(f"readings must be a list of 1 to {MAX_READINGS} readings")
        if not isinstance(items, list):
            return ()
    sent: list[Any] = []
    readings: list[Reading] = []
    for index, item in enumerate(items):
        reading = _parse_reading(f"readings[{index}]", item, errors)
        code = item.get("code") if isinstance(item, dict) else None
        if code in READING_CODES and code in sent:
            errors.append(f"readings[{index}].code {code} appears more than once")
        sent.append(code)
        if reading is not None:
            readings.append(reading)
    _check_blood_pressure(sent, readings, errors)
    return tuple(readings)


def finite_number(value: Any) -> float | None:
    """Return a JSON number as a finite float, or None (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return number if math.isfinite(number) else None


def show(value: Any) -> str:
    """Return a short printable rendering of a received value for an error message."""
    shown = "null" if value is None else repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _parse_reading(where: str, item: Any, errors: list[str]) -> Reading | None:
    if not isinstance(item, dict):
        errors.append(f"{where} must be an object with code, value and optional unit")
        return None
    before = len(errors)
    for key in sorted(item.keys() - _READING_KEYS):
        errors.append(f"{where} has unknown key {show(key)}; allowed keys are code, value, unit")
    code, value, unit = item.get("code"), item.get("value"), item.get("unit")
    if "code" not in item:
        errors.append(f"{where}.code is required")
    elif code not in READING_CODES:
        errors.append(f"{where}.code {show(code)} is not one of: {', '.join(READING_CODES)}")
    number = finite_number(value)
    if "value" not in item:
        errors.append(f"{where}.value is required")
    elif number is None:
        kind = (
            "finite number"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else "number"
        )
        errors.append(f"{where}.value must be a {kind}")
    if unit is not None and not isinstance(unit, str):
        errors.append(f"{where}.unit must be a string")
    if len(errors) > before or number is None:
        return None
    return _convert(where, str(code), number, unit, errors)


def _convert(
    where: str, code: str, number: float, unit: str | None, errors: list[str]
) -> Reading | None:
    try:
        value = to_canonical(code, number, unit)
    except UnitError as exc:
        errors.append(f"{where}.{exc}")
        return None
    canonical = canonical_unit(code)
    low, high = plausible_range(code)
    if not low <= value <= high:
        sent_as = f" (sent as {_num(number)} {unit})" if unit not in (None, canonical) else ""
        errors.append(
            f"{code} {_num(value)} {canonical} is outside the plausible range "
            f"{_num(low)}–{_num(high)} {canonical}{sent_as}"
        )
        return None
    return Reading(code, value, canonical)


def _check_blood_pressure(sent: list[Any], readings: list[Reading], errors: list[str]) -> None:
    if ("bp_sys" in sent) != ("bp_dia" in sent):
        errors.append("bp_sys and bp_dia must be sent together")
    values = {r.code: r.value for r in readings}
    if "bp_sys" in values and "bp_dia" in values and values["bp_dia"] >= values["bp_sys"]:
        errors.append(
            f"bp_dia {_num(values['bp_dia'])} mm[Hg] must be below "
            f"bp_sys {_num(values['bp_sys'])} mm[Hg]"
        )


def _num(value: float) -> str:
    return f"{value:.10g}"
