"""Triage a reading against the patient's own red/yellow limits (pure, no I/O).

The limits are data set by the treatment-responsible clinician (see docs/clinical.md);
nothing here holds a clinical number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SEVERITY_ORDER = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class ThresholdSet:
    """Red and yellow limits for one measurement type; a value beyond a limit triggers."""

    measurement: str
    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None
    set_by: str = ""
    set_at: datetime | None = None


@dataclass(frozen=True)
class Classification:
    """The triage colour of one value, the side it left the range on and the limit crossed."""

    severity: str  # green | yellow | red
    direction: str | None = None  # low | high
    limit: float | None = None


@dataclass(frozen=True)
class AlertRequest:
    """What a rule asks to be raised; the service layer stores and delivers it."""

    rule: str
    severity: str
    reason: str
    details: dict[str, object]


def classify(value: float, limits: ThresholdSet) -> Classification:
    """Return red, yellow or green for `value` against `limits` (strictly beyond a limit)."""
    checks = (
        ("red", "low", limits.red_low, value < (limits.red_low or 0)),
        ("red", "high", limits.red_high, value > (limits.red_high or 0)),
        ("yellow", "low", limits.yellow_low, value < (limits.yellow_low or 0)),
        ("yellow", "high", limits.yellow_high, value > (limits.yellow_high or 0)),
    )
    for severity, direction, limit, crossed in checks:
        if limit is not None and crossed:
            return Classification(severity, direction, limit)
    return Classification("green")


def threshold_alert(label: str, value: float, unit: str, limits: ThresholdSet,
                    ) -> AlertRequest | None:
    """Ask for an alert when `value` is red or yellow, with a reason a clinician can read."""
    found = classify(value, limits)
    if found.severity == "green":
        return None
    side = "below" if found.direction == "low" else "above"
    who = f" set by {limits.set_by}" if limits.set_by else ""
    when = f" on {limits.set_at:%d %b %Y}" if limits.set_at else ""
    reason = (f"{label} {_fmt(value)} {unit} is {side} the {found.severity} limit "
              f"{_fmt(found.limit)} {unit}{who}{when}")
    details = {"measurement": limits.measurement, "value": value, "unit": unit,
               "limit": found.limit, "direction": found.direction, "severity": found.severity,
               "set_by": limits.set_by,
               "set_at": limits.set_at.isoformat() if limits.set_at else None}
    return AlertRequest(f"threshold:{limits.measurement}", found.severity, reason, details)


def _fmt(number: float | None) -> str:
    if number is None:
        return "?"
    return str(int(number)) if float(number).is_integer() else f"{number:g}"
