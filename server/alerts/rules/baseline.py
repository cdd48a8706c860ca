"""Falls relative to the patient's own recent values: SpO2 day to day and 7-day, FEV1/FVC."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import label, num, quantity
from telekol.server.alerts.triage import AlertRequest

SPIROMETRY = ("fev1", "fvc")  # Cooper 2020 validated the SD rule for these two only


def spo2_drop(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a yellow alert when SpO2 fell more than N points from yesterday's mean."""
    if reading is None or reading.code != "spo2":
        return []
    day = ctx.local(reading.taken_at).date() - timedelta(days=1)
    # Only readings near yesterday's local midnights can be of yesterday (a day is at most
    # 25 h long); looking at those alone keeps a day of many readings from costing each one.
    midnight = datetime.combine(day, time(), tzinfo=ZoneInfo(ctx.timezone)).astimezone(UTC)
    earlier = ctx.history("spo2", max(reading.taken_at - timedelta(days=2),
                                      midnight - timedelta(hours=3)),
                          min(reading.taken_at, midnight + timedelta(hours=27)))
    yesterday = [r.value for r in earlier if ctx.local(r.taken_at).date() == day]
    if not yesterday:
        return []
    reference = statistics.fmean(yesterday)
    fall = round(reference - reading.value, 6)
    limit = ctx.parameters.spo2_daily_drop_points.value
    if fall <= limit:
        return []
    reason = (f"SpO2 fell {num('spo2', fall)} points since yesterday "
              f"({num('spo2', reference)} → {quantity('spo2', reading.value)}); "
              f"alert above {num('spo2', limit)} points")
    details: dict[str, object] = {
        "value": reading.value, "yesterday_mean": reference, "yesterday_readings": len(yesterday),
        "fall": fall, "limit": limit}
    return [AlertRequest("baseline:spo2-drop", "yellow", reason, details)]


def spo2_below_baseline(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a yellow alert when SpO2 is more than N points below its rolling mean."""
    if reading is None or reading.code != "spo2":
        return []
    window = _window(reading, ctx)
    if window is None:
        return []
    days, values = window
    mean = statistics.fmean(values)
    below = round(mean - reading.value, 6)
    limit = ctx.parameters.spo2_baseline_drop_points.value
    if below <= limit:
        return []
    reason = (f"SpO2 {quantity('spo2', reading.value)} is {num('spo2', round(below, 1))} points "
              f"below its {days}-day mean {num('spo2', round(mean, 1))} % "
              f"({len(values)} readings); alert above {num('spo2', limit)} points")
    details: dict[str, object] = {
        "value": reading.value, "mean": mean, "readings": len(values), "days": days,
        "below": below, "limit": limit}
    return [AlertRequest("baseline:spo2-below-baseline", "yellow", reason, details)]


def spirometry(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a yellow alert when FEV1/FVC is more than k SD below its rolling mean."""
    if reading is None or reading.code not in SPIROMETRY:
        return []
    window = _window(reading, ctx)
    if window is None:
        return []
    days, values = window
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    factor = ctx.parameters.fev1_sd_factor.value
    if reading.value >= mean - factor * sd:
        return []
    code, name = reading.code, label(reading.code)
    z = round((mean - reading.value) / sd, 2) if sd > 0 else None
    how_far = f"{z:.1f} SD below" if z is not None else "below"
    steady = "" if z is not None else ", which did not vary"
    reason = (f"{name} {quantity(code, reading.value)} is {how_far} its {days}-day mean "
              f"{quantity(code, mean)}{steady} ({len(values)} readings); "
              f"alert beyond {factor:g} SD")
    details: dict[str, object] = {
        "value": reading.value, "mean": mean, "sd": sd, "sd_below": z, "readings": len(values),
        "days": days, "sd_factor": factor}
    return [AlertRequest(f"baseline:{code}", "yellow", reason, details)]


def _window(reading: Reading, ctx: PatientContext) -> tuple[int, list[float]] | None:
    """Return the baseline days and earlier values, or None when there are too few."""
    days = int(ctx.parameters.baseline_days.value)
    needed = max(2, int(ctx.parameters.baseline_min_readings.value))
    earlier = ctx.history(reading.code, reading.taken_at - timedelta(days=days), reading.taken_at)
    if len(earlier) < needed:
        return None
    return days, [r.value for r in earlier]
