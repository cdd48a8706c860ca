"""Convert a device reading to the canonical UCUM unit of its code (contract §3).

Unit strings are matched exactly: UCUM is case-sensitive (`mL` is not `ML`).
Converted values are rounded to the resolution a home device realistically has, so a
conversion never invents precision: 2 decimals for L and kg, 1 decimal for L/min, Cel and
mm[Hg]. A value sent in the canonical unit is returned unchanged.
"""

from __future__ import annotations

from collections.abc import Callable


class UnitError(ValueError):
    """A reading was sent in a unit that is not accepted for its code."""


_Convert = Callable[[float], float]


def _scale(factor: float, digits: int) -> _Convert:
    return lambda value: round(value * factor, digits)


def _fahrenheit_to_celsius(value: float) -> float:
    return round((value - 32.0) * 5.0 / 9.0, 1)


def _same(value: float) -> float:
    return value


_LB_TO_KG = _scale(0.45359237, 2)
_KPA_TO_MMHG = _scale(7.50062, 1)
_PER_MIN: dict[str, _Convert] = {"/min": _same, "1/min": _same}
_LITRES: dict[str, _Convert] = {"L": _same, "mL": _scale(0.001, 2)}
_MMHG: dict[str, _Convert] = {"mm[Hg]": _same, "mmHg": _same, "kPa": _KPA_TO_MMHG}

# First key of each table is the canonical UCUM unit.
_CONVERSIONS: dict[str, dict[str, _Convert]] = {
    "spo2": {"%": _same},
    "pulse": {**_PER_MIN, "bpm": _same},
    "resp_rate": _PER_MIN,
    "fev1": _LITRES,
    "fvc": _LITRES,
    "pef": {"L/min": _same, "L/s": _scale(60.0, 1)},
    "weight": {"kg": _same, "g": _scale(0.001, 2), "lb": _LB_TO_KG, "[lb_av]": _LB_TO_KG},
    "temperature": {"Cel": _same, "[degF]": _fahrenheit_to_celsius, "degF": _fahrenheit_to_celsius},
    "bp_sys": _MMHG,
    "bp_dia": _MMHG,
}


def canonical_unit(reading_code: str) -> str:
    """Return the canonical UCUM unit of a reading code."""
    return next(iter(_CONVERSIONS[reading_code]))


def accepted_units(reading_code: str) -> tuple[str, ...]:
    """Return every unit accepted for a reading code, canonical first."""
    return tuple(_CONVERSIONS[reading_code])


def to_canonical(reading_code: str, value: float, unit: str | None) -> float:
    """Convert a value to the canonical unit of its reading code; None means canonical."""
    table = _CONVERSIONS.get(reading_code)
    if table is None:
        raise UnitError(f"{reading_code!r} is not a known reading code")
    if unit is None:
        return value
    convert = table.get(unit)
    if convert is None:
        accepted = ", ".join(table)
        raise UnitError(
            f"unit {unit[:32]!r} is not accepted for {reading_code}; use one of: {accepted}"
        )
    return convert(value)
