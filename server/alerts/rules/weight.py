"""Weight gain over a few days (fluid retention), relative to the patient's own weight."""

from __future__ import annotations

from datetime import timedelta

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import num, quantity
from telekol.server.alerts.triage import AlertRequest


def weight_gain(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a yellow alert when weight rose by N kg or more over the last D days."""
    if reading is None or reading.code != "weight":
        return []
    days = ctx.parameters.weight_days.value
    earlier = ctx.history("weight", reading.taken_at - timedelta(days=days), reading.taken_at)
    if not earlier:
        return []
    lowest = min(earlier, key=lambda r: r.value)
    gain = round(reading.value - lowest.value, 6)
    limit = ctx.parameters.weight_gain_kg.value
    if gain < limit:
        return []
    reason = (f"Weight rose {num('weight', gain)} kg in {num('days', days)} days "
              f"({num('weight', lowest.value)} → {quantity('weight', reading.value)}); "
              f"alert from +{num('weight', limit)} kg")
    details: dict[str, object] = {
        "value": reading.value, "lowest": lowest.value,
        "lowest_taken_at": lowest.taken_at.isoformat(), "gain": gain, "limit_kg": limit,
        "days": days}
    return [AlertRequest("weight-gain", "yellow", reason, details)]
