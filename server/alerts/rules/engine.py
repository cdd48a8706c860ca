"""Run the rules: per reading, periodically, and the worst triage colour of what they ask."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from telekol.server.alerts.rules import (
    baseline,
    cat,
    device,
    missing,
    news2,
    symptoms,
    thresholds,
    weight,
)
from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import moment
from telekol.server.alerts.triage import SEVERITY_ORDER, AlertRequest

Rule = Callable[[Reading | None, PatientContext], list[AlertRequest]]

READING_RULES: tuple[Rule, ...] = (
    thresholds.threshold, baseline.spo2_drop, baseline.spo2_below_baseline,
    baseline.spirometry, weight.weight_gain, cat.cat_rise, symptoms.symptoms, news2.news2,
    device.clock,
)
SCHEDULE_RULES: tuple[Rule, ...] = (
    missing.missing, device.silent, device.battery, device.rejections,
)


def evaluate(reading: Reading, ctx: PatientContext) -> list[AlertRequest]:
    """Run every per-reading rule on `reading`; late readings are evaluated and marked late."""
    requests = [request for rule in READING_RULES for request in rule(reading, ctx)]
    return [_stamped(request, reading, ctx) for request in requests]


def evaluate_schedule(ctx: PatientContext) -> list[AlertRequest]:
    """Run the time-based rules (missing measurements, devices) at `ctx.now`."""
    return [request for rule in SCHEDULE_RULES for request in rule(None, ctx)]


def triage_colour(requests: Iterable[AlertRequest]) -> str:
    """Return the worst of red/yellow/green; blue (absence, devices) is not a reading colour."""
    colours = [r.severity for r in requests if r.severity in SEVERITY_ORDER]
    return max(colours, key=SEVERITY_ORDER.__getitem__, default="green")


def _stamped(request: AlertRequest, reading: Reading, ctx: PatientContext) -> AlertRequest:
    """Add when the reading was taken and whether it came late, to reason and details."""
    details: dict[str, object] = {
        **request.details, "taken_at": reading.taken_at.isoformat(), "late": reading.late}
    reason = request.reason
    if reading.late:
        reason += f" (taken {moment(ctx.local(reading.taken_at))}, uploaded late)"
    return AlertRequest(request.rule, request.severity, reason, details)
