"""Words and numbers for reasons a clinician reads (labels and units from fhir/codes.py)."""

from __future__ import annotations

from datetime import datetime

from telekol.fhir.codes import MEASUREMENT_TYPES, component_for

# Short labels clinicians use; everything else falls back to the catalogue's English display.
_SHORT = {"spo2": "SpO2", "cat": "CAT"}
# Decimals shown per reading code; others show as measured.
_PLACES = {"fev1": 2, "fvc": 2, "weight": 1, "temperature": 1}


def label(code: str) -> str:
    """Return the English label of a reading code."""
    if code in _SHORT:
        return _SHORT[code]
    component = component_for(code)
    if component is not None:
        return component.display_en
    kind = MEASUREMENT_TYPES.get(code)
    return kind.display_en if kind else code


def unit(code: str, fallback: str = "") -> str:
    """Return the display unit of a reading code (canonical), else `fallback`."""
    if component_for(code) is not None:
        return MEASUREMENT_TYPES["bp"].unit_display
    kind = MEASUREMENT_TYPES.get(code)
    return kind.unit_display if kind else fallback


def num(code: str, value: float) -> str:
    """Format a value of a reading code: 93 → "93", FEV1 1.1 → "1.10"."""
    if code in _PLACES:
        return f"{value:.{_PLACES[code]}f}"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def quantity(code: str, value: float, fallback_unit: str = "") -> str:
    """Format a value with its display unit: "88 %", "1.10 L"."""
    return f"{num(code, value)} {unit(code, fallback_unit)}".strip()


def moment(local: datetime) -> str:
    """Format a local instant as "08:00 on 03 Nov 2025"."""
    return f"{local:%H:%M} on {local:%d %b %Y}"
