"""Device and data quality: silent devices, low batteries, clocks far off, rejections."""

from __future__ import annotations

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import moment
from telekol.server.alerts.triage import AlertRequest


def silent(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a blue alert per device that has sent nothing for longer than the limit."""
    hours = ctx.parameters.device_silent_hours.value
    found = []
    for device in ctx.devices:
        if device.last_seen_at is None:
            continue  # never connected: provisioning's concern, not silence
        quiet = (ctx.now - device.last_seen_at).total_seconds() / 3600
        if quiet <= hours:
            continue
        reason = (f"Device {device.device_id} has sent nothing for {quiet:.0f} h "
                  f"(last seen {moment(ctx.local(device.last_seen_at))}; limit {hours:g} h)")
        details: dict[str, object] = {
            "device_id": device.device_id, "silent_hours": round(quiet, 2),
            "last_seen_at": device.last_seen_at.isoformat(), "limit_hours": hours}
        found.append(AlertRequest("device:silent", "blue", reason, details))
    return found


def battery(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a blue alert per device whose battery is below the limit."""
    limit = ctx.parameters.battery_low_percent.value
    return [AlertRequest("device:battery", "blue",
                         f"Device {d.device_id} battery {d.battery_percent:g} % is below "
                         f"{limit:g} %",
                         {"device_id": d.device_id, "battery_percent": d.battery_percent,
                          "limit_percent": limit})
            for d in ctx.devices if d.battery_percent is not None and d.battery_percent < limit]


def rejections(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a blue alert per device whose last N messages were all rejected."""
    limit = ctx.parameters.rejections_in_a_row.value
    return [AlertRequest("device:rejections", "blue",
                         f"Device {d.device_id}: the last {d.rejections_in_a_row} messages "
                         f"were rejected (limit {limit:g} in a row)",
                         {"device_id": d.device_id, "rejections": d.rejections_in_a_row,
                          "limit": limit})
            for d in ctx.devices if d.rejections_in_a_row >= limit]


def clock(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a blue alert when a device's clock is off: a reading from the future, or the
    newest reading of every recent upload behind its receipt by the same amount."""
    if reading is None or reading.device_id is None:
        return []
    ahead = ctx.parameters.clock_skew_minutes.value
    offset = (reading.taken_at - reading.received_at).total_seconds() / 60
    if offset > ahead:  # the gateway accepts up to 5 min ahead; a sound clock is never ahead
        return [_clock_alert(reading, ctx, offset, "ahead", ahead)]
    behind = _steady_lag(reading, ctx)
    limit = ctx.parameters.clock_behind_minutes.value
    if behind is not None and behind > limit:
        return [_clock_alert(reading, ctx, -behind, "behind", limit)]
    return []


def _steady_lag(reading: Reading, ctx: PatientContext) -> float | None:
    """Return how far behind receipt the newest reading of each of the device's last uploads
    was, when that is the same every time (minutes); None otherwise.

    A buffering hub uploads old readings with a fresh one on top, or at times that vary;
    only a clock that is behind makes even the newest reading equally old in every upload.
    """
    assert reading.device_id is not None
    count = int(ctx.parameters.clock_uploads.value)
    latest = ctx.uploads(reading.device_id, reading.received_at, last=1)
    if latest and latest[-1].received_at == reading.received_at and (
            latest[-1].taken_at > reading.taken_at):
        return None  # judged once per upload, on its newest reading
    uploads = ctx.uploads(reading.device_id, reading.received_at,
                          last=count if count > 0 else None)
    if len(uploads) < count:
        return None
    lags = [(r.received_at - r.taken_at).total_seconds() / 60 for r in uploads]
    if max(lags) - min(lags) > ctx.parameters.clock_skew_minutes.value:
        return None
    return min(lags)


def _clock_alert(reading: Reading, ctx: PatientContext, minutes: float, side: str,
                 limit: float) -> AlertRequest:
    who = f"Device {reading.device_id}"
    reason = (f"{who} clock looks {abs(minutes):.0f} min {side}: reading taken "
              f"{moment(ctx.local(reading.taken_at))}, received "
              f"{moment(ctx.local(reading.received_at))} (limit {limit:g} min)")
    details: dict[str, object] = {
        "device_id": reading.device_id, "offset_minutes": round(minutes, 2),
        "limit_minutes": limit, "side": side, "late": reading.late,
        "taken": reading.taken_at.isoformat(), "received": reading.received_at.isoformat()}
    return AlertRequest("device:clock", "blue", reason, details)
