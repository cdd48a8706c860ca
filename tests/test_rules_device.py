"""Device and data quality: silence, battery, clock, repeated rejections (all blue)."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.rules import (
    DeviceState,
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.rules.device import battery, clock, rejections, silent

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def context(*devices: DeviceState, **overrides: float) -> PatientContext:
    return PatientContext("p1", NOW, devices=devices,
                          parameters=merge_parameters(default_parameters(), overrides))


@pytest.mark.parametrize(("hours_quiet", "overrides", "alerts"), [
    (24, {}, False), (24.1, {}, True), (None, {}, False),  # never seen: not silence
    (30, {"device_silent_hours": 48}, False),
])
def test_a_device_silent_longer_than_the_limit(hours_quiet, overrides, alerts):
    seen = None if hours_quiet is None else NOW - hours_quiet * HOUR
    found = silent(None, context(DeviceState("hub-1", last_seen_at=seen), **overrides))
    assert bool(found) is alerts
    assert all(a.rule == "device:silent" and a.severity == "blue" for a in found)


def test_only_the_silent_device_is_named():
    devices = (DeviceState("hub-1", NOW - HOUR), DeviceState("scale-2", NOW - 30 * HOUR))
    (alert,) = silent(None, context(*devices))
    assert alert.details["device_id"] == "scale-2"
    assert alert.reason == ("Device scale-2 has sent nothing for 30 h "
                            "(last seen 02:00 on 03 Nov 2025; limit 24 h)")


@pytest.mark.parametrize(("percent", "overrides", "alerts"), [
    (20, {}, False), (19.9, {}, True), (None, {}, False), (25, {"battery_low_percent": 30}, True),
])
def test_a_battery_below_the_limit(percent, overrides, alerts):
    found = battery(None, context(DeviceState("hub-1", battery_percent=percent), **overrides))
    assert [a.rule for a in found] == (["device:battery"] if alerts else [])


@pytest.mark.parametrize(("count", "overrides", "alerts"), [
    (2, {}, False), (3, {}, True), (3, {"rejections_in_a_row": 5}, False),
])
def test_repeated_rejections(count, overrides, alerts):
    found = rejections(None, context(DeviceState("hub-1", rejections_in_a_row=count), **overrides))
    assert [a.rule for a in found] == (["device:rejections"] if alerts else [])


@pytest.mark.parametrize(("taken_minutes", "late", "overrides", "side"), [
    (10, False, {}, None), (11, False, {}, "ahead"),
    (-10, False, {}, None), (-11, False, {}, "behind"),
    (-300, True, {}, None),  # buffered on the hub: old is expected
    (11, True, {}, "ahead"),  # even buffered, a future time is a wrong clock
    (30, False, {"clock_skew_minutes": 60}, None),
])
def test_a_reading_time_far_from_its_receipt_time(taken_minutes, late, overrides, side):
    reading = Reading("spo2", 95, "%", NOW + taken_minutes * MINUTE, NOW, late=late,
                      device_id="hub-1")
    found = clock(reading, context(**overrides))
    assert [a.details["offset_minutes"] > 0 for a in found] == ([side == "ahead"] if side else [])
    assert all(f" {side}: " in a.reason and a.severity == "blue" for a in found)
