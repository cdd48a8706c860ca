"""Missing measurements: a scheduled one not taken by its deadline plus grace is blue."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    ScheduledMeasurement,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.missing import missing

DUE = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)  # 08:00 in Copenhagen
MINUTE = timedelta(minutes=1)


def taken(code: str, minutes_from_due: float, received_late: bool = False) -> Reading:
    at = DUE + minutes_from_due * MINUTE
    received = at + (300 * MINUTE if received_late else 0 * MINUTE)
    return Reading(code, 1, "", at, received, late=received_late)


@pytest.mark.parametrize(("now_minutes", "readings", "overrides", "alerts"), [
    (120, (), {}, False),  # exactly at the deadline: not yet missing
    (121, (), {}, True),
    (121, (taken("spo2", 30),), {}, False),
    (121, (taken("spo2", -120),), {}, False),  # early, within the allowed 120 min
    (121, (taken("spo2", -121),), {}, True),  # too early: belongs to an earlier slot
    (121, (taken("pulse", 0),), {}, True),  # another measurement does not count
    (400, (taken("spo2", 60, received_late=True),), {}, False),  # taken in time, uploaded late
    (121, (), {"missing_grace_minutes": 180}, False),  # this patient has 3 h of grace
])
def test_a_scheduled_measurement_is_missing_after_deadline_plus_grace(now_minutes, readings,
                                                                       overrides, alerts):
    ctx = PatientContext("p1", DUE + now_minutes * MINUTE, readings,
                         parameters=merge_parameters(default_parameters(), overrides),
                         schedule=(ScheduledMeasurement("spo2", DUE),))
    found = missing(None, ctx)
    assert bool(found) is alerts
    assert all(a.rule == "missing:spo2" and a.severity == "blue" for a in found)


def test_blood_pressure_components_satisfy_a_blood_pressure_schedule():
    ctx = PatientContext("p1", DUE + 200 * MINUTE, (taken("bp_sys", 5), taken("bp_dia", 5)),
                         schedule=(ScheduledMeasurement("bp", DUE),))
    assert missing(None, ctx) == []


def test_each_missed_occurrence_is_its_own_request_with_its_due_time():
    schedule = (ScheduledMeasurement("spo2", DUE - 12 * 60 * MINUTE),
                ScheduledMeasurement("spo2", DUE), ScheduledMeasurement("weight", DUE))
    ctx = PatientContext("p1", DUE + 180 * MINUTE, (), schedule=schedule)
    found = missing(None, ctx)
    assert [(a.rule, a.details["due"]) for a in found] == [
        ("missing:spo2", "2025-11-03T19:00:00+00:00"),
        ("missing:spo2", "2025-11-04T07:00:00+00:00"),
        ("missing:weight", "2025-11-04T07:00:00+00:00")]
    assert found[1].reason == ("No SpO2 received: due 08:00 on 04 Nov 2025, "
                               "not there by 10:00 on 04 Nov 2025 (120 min grace)")
