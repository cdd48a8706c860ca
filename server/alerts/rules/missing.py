"""Missing measurements: scheduled, not received by the deadline plus grace ("blue")."""

from __future__ import annotations

from datetime import datetime, timedelta

from telekol.fhir.codes import component_for
from telekol.server.alerts.rules.snapshot import PatientContext, Reading, ScheduledMeasurement
from telekol.server.alerts.rules.wording import label, moment
from telekol.server.alerts.triage import AlertRequest


def missing(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a blue alert per scheduled measurement overdue by more than the grace time."""
    grace = timedelta(minutes=ctx.parameters.missing_grace_minutes.value)
    early = timedelta(minutes=ctx.parameters.missing_early_minutes.value)
    return [_alert(item, grace, ctx) for item in ctx.schedule
            if ctx.now > item.due + grace and not _taken(item, item.due - early, ctx)]


def _taken(item: ScheduledMeasurement, start: datetime, ctx: PatientContext) -> bool:
    """Return True when a reading of the scheduled kind was taken from `start` on."""
    # A buffered reading taken in time counts: it was measured, only uploaded late.
    return any(_kind(r.code) == item.code and r.taken_at >= start for r in ctx.recent)


def _kind(code: str) -> str:
    return "bp" if component_for(code) is not None else code


def _alert(item: ScheduledMeasurement, grace: timedelta, ctx: PatientContext) -> AlertRequest:
    deadline = item.due + grace
    minutes = grace.total_seconds() / 60
    reason = (f"No {label(item.code)} received: due {moment(ctx.local(item.due))}, "
              f"not there by {moment(ctx.local(deadline))} ({minutes:g} min grace)")
    # `due` identifies the occurrence: the service stores one alert per (patient, rule, due).
    details: dict[str, object] = {
        "code": item.code, "due": item.due.isoformat(), "deadline": deadline.isoformat(),
        "grace_minutes": minutes}
    return AlertRequest(f"missing:{item.code}", "blue", reason, details)
