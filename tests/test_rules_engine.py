"""Running every rule: per reading, periodically, and the worst triage colour."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    READING_RULES,
    SCHEDULE_RULES,
    DeviceState,
    PatientContext,
    Reading,
    ScheduledMeasurement,
    evaluate,
    evaluate_schedule,
    triage_colour,
)
from telekol.server.alerts.triage import AlertRequest, ThresholdSet

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reading(code: str, value: float, at: datetime = NOW, late: bool = False) -> Reading:
    return Reading(code, value, "", at, NOW, late=late)


def test_a_reading_is_judged_by_every_rule_that_applies():
    ctx = PatientContext("p1", NOW, (reading("spo2", 94, NOW - DAY),),
                         thresholds={"spo2": ThresholdSet("spo2", red_low=88)})
    rules = {a.rule for a in evaluate(reading("spo2", 87), ctx)}
    assert rules == {"threshold:spo2", "baseline:spo2-drop", "news2"}


def test_a_late_reading_is_evaluated_and_marked_late():
    ctx = PatientContext("p1", NOW, thresholds={"spo2": ThresholdSet("spo2", red_low=88)})
    found = evaluate(reading("spo2", 95, NOW - 5 * DAY, late=True), ctx)
    assert found == []
    (alert, *_) = evaluate(reading("spo2", 85, NOW - 5 * DAY, late=True), ctx)
    assert alert.details["late"] is True
    assert alert.details["taken_at"] == "2025-10-30T07:00:00+00:00"
    assert alert.reason.endswith("(taken 08:00 on 30 Oct 2025, uploaded late)")


def test_the_schedule_rules_run_without_a_reading():
    ctx = PatientContext("p1", NOW, schedule=(ScheduledMeasurement("spo2", NOW - DAY),),
                         devices=(DeviceState("hub-1", NOW - 2 * DAY, 10, 4),))
    rules = [a.rule for a in evaluate_schedule(ctx)]
    assert rules == ["missing:spo2", "device:silent", "device:battery", "device:rejections"]
    assert {a.severity for a in evaluate_schedule(ctx)} == {"blue"}


def test_schedule_rules_are_not_run_per_reading_and_reading_rules_not_periodically():
    assert not set(READING_RULES) & set(SCHEDULE_RULES)
    ctx = PatientContext("p1", NOW, devices=(DeviceState("hub-1", battery_percent=5),))
    assert evaluate(reading("weight", 80), ctx) == []


@pytest.mark.parametrize(("severities", "colour"), [
    ((), "green"), (("yellow",), "yellow"), (("yellow", "red", "yellow"), "red"),
    (("blue",), "green"), (("blue", "yellow"), "yellow"), (("red", "blue"), "red"),
])
def test_the_triage_colour_is_the_worst_requested(severities, colour):
    requests = [AlertRequest("r", s, "", {}) for s in severities]
    assert triage_colour(requests) == colour
