"""Device and data quality: silence, battery, clock, repeated rejections (all blue)."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    DeviceState,
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.device import battery, clock, rejections, silent

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


@pytest.mark.parametrize(("taken_minutes", "overrides", "alerts"), [
    (2, {}, False), (3, {}, True),  # the gateway accepts up to 5 minutes ahead
    (4, {"clock_skew_minutes": 5}, False),
])
def test_a_reading_from_the_future_means_a_fast_clock(taken_minutes, overrides, alerts):
    reading = Reading("spo2", 95, "%", NOW + taken_minutes * MINUTE, NOW, device_id="hub-1")
    found = clock(reading, context(**overrides))
    assert [(a.rule, a.details["side"]) for a in found] == (
        [("device:clock", "ahead")] if alerts else [])


def uploads(*lags: float, buffered: int = 0) -> tuple[Reading, ...]:
    """Return one reading per upload, an hour apart, each `lag` minutes behind its receipt;
    with `buffered`, the last upload also carries older readings from the hub's buffer."""
    found = []
    for index, lag in enumerate(lags):
        received = NOW - (len(lags) - 1 - index) * HOUR
        found.append(Reading("spo2", 95, "%", received - lag * MINUTE, received,
                             late=lag > 10, device_id="hub-1"))
    last = found[-1].received_at
    found += [Reading("pulse", 80, "/min", last - (5 + n) * HOUR, last, late=True,
                      device_id="hub-1") for n in range(buffered)]
    return tuple(found)


@pytest.mark.parametrize(("lags", "side"), [
    ((15, 15.5, 15), "behind"),  # every upload's newest reading equally old: a slow clock
    ((0.2, 0.5, 0.1), None),  # a sound clock
    ((15, 15), None),  # too few uploads to tell
    ((3, 45, 15), None),  # a hub uploading now and then: the lag varies
    ((9, 9, 9), None),  # within the limit
])
def test_a_clock_behind_shows_as_the_same_lag_in_every_upload(lags, side):
    recent = uploads(*lags)
    ctx = PatientContext("p1", NOW, recent=recent)
    found = clock(recent[-1], ctx)
    assert [a.details["side"] for a in found] == ([side] if side else [])
    assert all(a.severity == "blue" and " behind: " in a.reason for a in found)


def test_a_buffered_reading_is_not_judged_apart_from_its_upload():
    recent = uploads(15, 15, 15, buffered=2)
    ctx = PatientContext("p1", NOW, recent=recent)
    assert clock(recent[2], ctx) != []  # the last upload's newest reading
    assert clock(recent[-1], ctx) == []  # an older one from the buffer, same upload
