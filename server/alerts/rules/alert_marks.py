"""Which reading an alert is about, and the marks it leaves on that reading's chart (pure).

A rule about one parameter names it: `threshold:<code>`, `missing:<code>`, the SpO2 and
spirometry baselines, weight gain, the CAT rise and the symptom diary. Rules about several
parameters (NEWS2) or about devices concern no single chart and leave no mark.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from telekol.server.alerts.rules.baseline import SPIROMETRY

# Rule ids whose parameter is not written after a colon.
_CONCERNS = {"baseline:spo2-drop": "spo2", "baseline:spo2-below-baseline": "spo2",
             "weight-gain": "weight", "cat-mcid": "cat", "symptoms": "symptoms"}
_NAMED = ("threshold", "missing")  # families whose id ends in the reading code


class AlertRow(Protocol):
    """What a mark needs of a stored alert."""

    @property
    def id(self) -> int | None: ...
    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class AlertMark:
    """One alert on the chart of `code`: raised and acknowledged, when inside the period."""

    alert_id: int | None
    code: str  # the reading code: spo2, bp_sys, weight, cat, ...
    rule: str
    severity: str
    raised_at: datetime | None  # None: raised before the period
    acknowledged_at: datetime | None  # None: not (yet) acknowledged within the period


def concerned_code(rule: str) -> str | None:
    """Return the reading code an alert rule is about, None when it is not about one."""
    if rule in _CONCERNS:
        return _CONCERNS[rule]
    family, _, code = rule.partition(":")
    if code and (family in _NAMED or (family == "baseline" and code in SPIROMETRY)):
        return code
    return None


def alert_marks(alerts: Iterable[AlertRow], start: datetime, end: datetime) -> list[AlertMark]:
    """Return the marks of alerts raised or acknowledged in [start, end], oldest first."""
    found = []
    for alert in alerts:
        code = concerned_code(alert.rule)
        raised = _within(alert.created_at, start, end)
        acknowledged = _within(alert.acknowledged_at, start, end)
        if code is not None and (raised or acknowledged):
            found.append(AlertMark(alert.id, code, alert.rule, alert.severity, raised,
                                   acknowledged))
    return sorted(found, key=lambda m: min(t for t in (m.raised_at, m.acknowledged_at) if t))


def _within(moment: datetime | None, start: datetime, end: datetime) -> datetime | None:
    return moment if moment is not None and start <= moment <= end else None
