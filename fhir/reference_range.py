"""FHIR referenceRange entries that snapshot the red/yellow limits in force for a reading.

Like the Danish national eHealth infrastructure, the limits in force are copied into
every Observation so it explains itself later; the range types are its codes
RAL (red, "alarm") and GAL (yellow, "warning") in urn:oid:1.2.208.184.100.1.
"""

from __future__ import annotations

RANGE_TYPE_SYSTEM = "urn:oid:1.2.208.184.100.1"
UCUM = "http://unitsofmeasure.org"


def reference_ranges(
    *,
    red_low: float | None,
    yellow_low: float | None,
    yellow_high: float | None,
    red_high: float | None,
    unit_code: str,
    unit_display: str,
) -> tuple[dict, ...]:
    """Return the RAL and GAL ranges (values outside them are red or yellow)."""
    ranges = []
    for code, text, low, high in (
        ("RAL", "red limits", red_low, red_high),
        ("GAL", "yellow limits", yellow_low, yellow_high),
    ):
        if low is None and high is None:
            continue
        entry: dict = {
            "type": {"coding": [{"system": RANGE_TYPE_SYSTEM, "code": code}], "text": text}
        }
        if low is not None:
            entry["low"] = _quantity(low, unit_code, unit_display)
        if high is not None:
            entry["high"] = _quantity(high, unit_code, unit_display)
        ranges.append(entry)
    return tuple(ranges)


def _quantity(value: float, code: str, display: str) -> dict:
    number: float | int = int(value) if float(value).is_integer() else value
    return {"value": number, "unit": display, "system": UCUM, "code": code}
