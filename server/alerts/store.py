"""Alert rows: one unresolved alert per patient and rule; repeats update it."""

from __future__ import annotations

from datetime import datetime

from telekol.server.alerts import rules
from telekol.server.alerts.triage import (
    SEVERITY_ORDER,
    AlertRequest,
)
from telekol.server.models import (
    Alert,
)


def alert_row(patient_id: str, observation_id: str | None, request: AlertRequest,
              now: datetime, taken_at: datetime | None = None) -> Alert:
    """Return the stored open alert a rule asked for about one observation taken `taken_at`."""
    at = taken_at or now
    return Alert(patient_id=patient_id, observation_id=observation_id, rule=request.rule,
                 severity=request.severity, reason=request.reason[:500], details=request.details,
                 created_at=now, updated_at=now, count=1, last_observation_id=observation_id,
                 last_at=at, severity_observation_id=observation_id,
                 severity_reason=request.reason[:500], severity_details=request.details,
                 severity_at=at)


RANK = {"blue": 0, **{k: v + 1 for k, v in SEVERITY_ORDER.items()}}


def rank(severity: str) -> int:
    """Return how serious a severity is: blue 0, green 1, yellow 2, red 3."""
    return RANK.get(severity, 0)


def lower_than(severity: str) -> list[str]:
    """Return the severities less serious than `severity`."""
    return [name for name, value in RANK.items() if value < rank(severity)]


def worse(old: str, new: str) -> str:
    """Return the more serious of two severities (the new one on a tie)."""
    return new if rank(new) >= rank(old) else old


def restates_limits(request: AlertRequest, ctx: rules.PatientContext) -> bool:
    """Return whether a NEWS2 request fired only on the single-parameter trigger (3 points in
    one parameter) for parameters whose limits the clinician has set for this patient.

    Such a trigger (for example SpO2 91 % → 3 points on Scale 1) repeats with generic hospital
    bands a limit the care plan has individualised; the threshold rule already judges the
    value. A NEWS2 total at or above `news2_medium` is always raised.
    """
    if request.rule != "news2":
        return False
    scores = request.details.get("scores")
    total = request.details.get("score")
    if not isinstance(scores, dict) or not isinstance(total, int | float):
        return False
    single = ctx.parameters.news2_single.value
    return total < ctx.parameters.news2_medium.value and all(
        code in ctx.thresholds for code, points in scores.items() if points >= single)
