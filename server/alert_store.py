"""Alert rows: one unresolved alert per patient and rule; repeats update it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select
from telekol.server import inbox, rules
from telekol.server.models import (
    Alert,
)
from telekol.server.triage import (
    SEVERITY_ORDER,
    AlertRequest,
)


def alert_row(patient_id: str, observation_id: str | None, request: AlertRequest,
              now: datetime) -> Alert:
    """Return the stored open alert a rule asked for about one observation."""
    return Alert(patient_id=patient_id, observation_id=observation_id, rule=request.rule,
                 severity=request.severity, reason=request.reason[:500], details=request.details,
                 created_at=now, updated_at=now, count=1, last_observation_id=observation_id)


def raise_alerts(session: Session, patient_id: str, observation_id: str | None,
                 requests: Sequence[AlertRequest], now: datetime,
                 actor_user_id: int | None = None) -> list[Alert]:
    """Store requests outside the ingest batch (manual entry): open, or update the patient's
    unresolved alert of the same rule (count + 1, worse severity, latest reason)."""
    wanted = {r.rule for r in requests}
    existing = {a.rule: a for a in session.exec(select(Alert).where(
        Alert.patient_id == patient_id, col(Alert.rule).in_(wanted),
        col(Alert.status) != "resolved"))} if wanted else {}
    stored, actions = [], []
    for request in requests:
        alert = existing.get(request.rule)
        if alert is None:
            alert = existing[request.rule] = alert_row(patient_id, observation_id, request, now)
            session.add(alert)
            actions.append("created")
        else:
            actions.append("updated")
            alert.count += 1
            alert.severity = worse(alert.severity, request.severity)
            alert.reason, alert.details = request.reason[:500], request.details
            alert.last_observation_id, alert.updated_at = observation_id, now
        stored.append(alert)
    session.flush()
    for alert, action in zip(stored, actions, strict=True):
        inbox.after_change(session, alert, action, "user" if actor_user_id else "gateway", now,
                           actor_user_id)
    return stored


@dataclass
class AlertUpdate:
    """Repeats of a stored unresolved alert seen in this batch, applied after the flush."""

    alert: Alert
    repeats: int
    severity: str
    request: AlertRequest
    observation_id: str | None


RANK = {"blue": 0, **{k: v + 1 for k, v in SEVERITY_ORDER.items()}}


def rank(severity: str) -> int:
    return RANK.get(severity, 0)


def worse(old: str, new: str) -> str:
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
