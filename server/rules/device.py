"""Device and data quality: silent devices, low batteries, clocks far off, rejections."""

from __future__ import annotations

from datetime import timedelta

from telekol.server.rules.snapshot import PatientContext, Reading
from telekol.server.rules.wording import moment
from telekol.server.triage import AlertRequest


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
    """Ask for a blue alert when a reading's time is far off its receipt time."""
    if reading is None:
        return []
    limit_min = ctx.parameters.clock_skew_minutes.value
    limit = timedelta(minutes=limit_min)
    offset = reading.taken_at - reading.received_at
    # A buffered (late) reading is legitimately old; only a future time proves a wrong clock.
    if offset > limit:
        side = "ahead"
    elif offset < -limit and not reading.late:
        side = "behind"
    else:
        return []
    minutes = offset.total_seconds() / 60
    who = f"Device {reading.device_id}" if reading.device_id else "The device"
    reason = (f"{who} clock looks {abs(minutes):.0f} min {side}: reading taken "
              f"{moment(ctx.local(reading.taken_at))}, received "
              f"{moment(ctx.local(reading.received_at))} (limit {limit_min:g} min)")
    details: dict[str, object] = {
        "device_id": reading.device_id, "offset_minutes": round(minutes, 2),
        "limit_minutes": limit_min, "late": reading.late}
    return [AlertRequest("device:clock", "blue", reason, details)]
