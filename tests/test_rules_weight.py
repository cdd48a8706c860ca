"""Weight gain over the last days, against the lowest weight in the window."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.weight import weight_gain

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reading(value: float, at: datetime = NOW) -> Reading:
    return Reading("weight", value, "kg", at, at)


def context(*recent: Reading, **overrides: float) -> PatientContext:
    return PatientContext("p1", NOW, recent,
                          parameters=merge_parameters(default_parameters(), overrides))


@pytest.mark.parametrize(("history", "today", "overrides", "alerts"), [
    (((2, 72.3),), 73.2, {}, False),  # +0.9 kg
    (((2, 72.3),), 73.3, {}, True),  # +1.0 kg reaches the limit (despite float rounding)
    (((3, 72.0),), 73.5, {}, True),  # exactly 3 days back is inside the window
    (((3.1, 72.0),), 73.5, {}, False),  # just outside the window
    (((2, 72.0), (1, 73.0)), 73.4, {}, True),  # against the lowest, not the latest
    (((2, 74.0),), 72.0, {}, False),  # a loss
    ((), 90.0, {}, False),  # no history
    (((2, 72.0),), 73.5, {"weight_gain_kg": 2.0}, False),  # this patient's limit is 2 kg
    (((5, 72.0),), 73.5, {"weight_days": 7}, True),  # this patient's window is 7 days
])
def test_weight_gain_within_the_window(history, today, overrides, alerts):
    recent = [reading(value, NOW - days * DAY) for days, value in history]
    found = weight_gain(reading(today), context(*recent, **overrides))
    assert bool(found) is alerts
    assert all(a.rule == "weight-gain" and a.severity == "yellow" for a in found)


def test_the_reason_shows_the_gain_and_both_weights():
    (alert,) = weight_gain(reading(73.4), context(reading(72.0, NOW - 2 * DAY)))
    assert alert.reason == "Weight rose 1.4 kg in 3 days (72.0 → 73.4 kg); alert from +1.0 kg"


def test_other_readings_ask_for_nothing():
    ctx = context(reading(60.0, NOW - DAY))
    assert weight_gain(Reading("spo2", 90, "%", NOW, NOW), ctx) == []
    assert weight_gain(None, ctx) == []
