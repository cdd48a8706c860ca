"""Absolute red/yellow limits from the care plan (reuses server/alerts/triage.py)."""

from __future__ import annotations

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import label, unit
from telekol.server.alerts.triage import AlertRequest, threshold_alert


def threshold(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a red/yellow alert when the reading is beyond its care-plan limits."""
    if reading is None or reading.code not in ctx.thresholds:
        return []
    request = threshold_alert(label(reading.code), reading.value,
                              unit(reading.code, reading.unit), ctx.thresholds[reading.code])
    return [] if request is None else [request]
