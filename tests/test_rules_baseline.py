"""Relative rules: SpO2 against yesterday and its 7-day mean, FEV1/FVC against mean and SD."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.baseline import spirometry, spo2_below_baseline, spo2_drop

# 08:00 on 4 Nov in Copenhagen (UTC+1 in November).
NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reading(code: str, value: float, at: datetime = NOW) -> Reading:
    return Reading(code, value, "", at, at)


def context(*recent: Reading, **overrides: float) -> PatientContext:
    # The tables below are written for a baseline of at least three readings.
    parameters = merge_parameters(default_parameters(),
                                  {"baseline_min_readings": 3, **overrides})
    return PatientContext("p1", NOW, recent, parameters=parameters)


def test_by_default_a_baseline_needs_five_readings():
    history = days_before("fev1", 1.4, 1.5, 1.6, 1.5)
    ctx = PatientContext("p1", NOW, tuple(history))
    assert spirometry(reading("fev1", 1.0), ctx) == []  # four are too few
    ctx = PatientContext("p1", NOW, tuple(days_before("fev1", 1.4, 1.5, 1.6, 1.5, 1.5)))
    assert spirometry(reading("fev1", 1.0), ctx)


def days_before(code: str, *values: float) -> list[Reading]:
    """Return one reading per day before NOW, the first value yesterday."""
    return [reading(code, v, NOW - (i + 1) * DAY) for i, v in enumerate(values)]


@pytest.mark.parametrize(("yesterday", "today", "alerts"), [
    ((93,), 89, False),  # a 4-point fall is not more than 4
    ((93,), 88, True),
    ((93, 94), 89, True),  # yesterday's mean 93.5: a 4.5-point fall
    ((93, 92), 89, False),  # yesterday's mean 92.5: a 3.5-point fall
    ((93,), 95, False),  # a rise
    ((), 80, False),  # no history: nothing to compare with
])
def test_spo2_fall_since_yesterday(yesterday, today, alerts):
    recent = [reading("spo2", v, NOW - DAY + timedelta(hours=i)) for i, v in enumerate(yesterday)]
    found = spo2_drop(reading("spo2", today), context(*recent))
    assert bool(found) is alerts
    assert all(a.rule == "baseline:spo2-drop" and a.severity == "yellow" for a in found)


@pytest.mark.parametrize(("taken_utc", "alerts"), [
    (datetime(2025, 11, 2, 23, 30, tzinfo=UTC), True),  # 00:30 on 3 Nov in Copenhagen
    (datetime(2025, 11, 2, 22, 30, tzinfo=UTC), False),  # 23:30 on 2 Nov: two days ago
    (datetime(2025, 11, 4, 6, 0, tzinfo=UTC), False),  # earlier today is not yesterday
])
def test_yesterday_is_the_patients_calendar_day(taken_utc, alerts):
    found = spo2_drop(reading("spo2", 88), context(reading("spo2", 94, taken_utc)))
    assert bool(found) is alerts


def test_the_drop_reason_shows_both_values():
    (alert,) = spo2_drop(reading("spo2", 88), context(*days_before("spo2", 93)))
    assert alert.reason == "SpO2 fell 5 points since yesterday (93 → 88 %); alert above 4 points"
    assert alert.details["fall"] == 5


def test_a_per_patient_drop_limit_changes_the_outcome():
    history = days_before("spo2", 93)
    assert spo2_drop(reading("spo2", 90), context(*history)) == []
    assert spo2_drop(reading("spo2", 90), context(*history, spo2_daily_drop_points=2))


@pytest.mark.parametrize(("history", "today", "alerts"), [
    (((1, 93), (2, 93), (3, 93)), 90, False),  # 3 points below the mean is not more than 3
    (((1, 93), (2, 93), (3, 93)), 89, True),
    (((1, 93), (2, 94), (3, 93), (4, 94)), 90, True),  # mean 93.5
    (((1, 93), (2, 93)), 80, False),  # two readings are too few for a baseline
    (((1, 93), (2, 93), (3, 93), (8, 80), (9, 80)), 89, True),  # 8 and 9 days back: outside
    (((1, 93), (2, 93), (3, 93), (6, 80), (7, 80)), 89, False),  # inside: mean 87.8
])
def test_spo2_below_its_7_day_mean(history, today, alerts):
    recent = [reading("spo2", value, NOW - days * DAY) for days, value in history]
    found = spo2_below_baseline(reading("spo2", today), context(*recent))
    assert bool(found) is alerts
    assert all(a.rule == "baseline:spo2-below-baseline" for a in found)


# FEV1 history 1.4, 1.5, 1.6: mean 1.5, SD 0.1, so the default limit is 1.5 - 0.1645 = 1.3355.
@pytest.mark.parametrize(("code", "today", "overrides", "alerts"), [
    ("fev1", 1.34, {}, False),
    ("fev1", 1.33, {}, True),
    ("fvc", 1.33, {}, True),
    ("pef", 1.0, {}, False),  # no COPD-validated rule for PEF
    ("fev1", 1.38, {}, False),
    ("fev1", 1.38, {"fev1_sd_factor": 1.0}, True),  # limit 1.40 for this patient
    ("fev1", 1.33, {"baseline_min_readings": 4}, False),  # too few readings for this patient
])
def test_spirometry_below_its_rolling_mean(code, today, overrides, alerts):
    recent = days_before(code, 1.4, 1.5, 1.6)
    found = spirometry(reading(code, today), context(*recent, **overrides))
    assert bool(found) is alerts
    assert all(a.rule == f"baseline:{code}" and a.severity == "yellow" for a in found)


def test_the_fev1_reason_gives_the_distance_in_sd():
    recent = days_before("fev1", 1.4, 1.5, 1.6)
    (alert,) = spirometry(reading("fev1", 1.29), context(*recent))
    assert alert.reason == ("FEV1 1.29 L is 2.1 SD below its 7-day mean 1.50 L (3 readings); "
                            "alert beyond 1.645 SD")
    assert alert.details["sd_below"] == pytest.approx(2.1)


def test_a_steady_history_still_alerts_on_a_fall():
    (alert,) = spirometry(reading("fev1", 1.4), context(*days_before("fev1", 1.5, 1.5, 1.5)))
    assert "which did not vary" in alert.reason
    assert alert.details["sd_below"] is None


def test_a_late_reading_is_compared_with_the_days_before_it_was_taken():
    taken = NOW - 3 * DAY
    later = days_before("fev1", 1.0, 1.0)  # taken after the late reading: not its baseline
    earlier = [reading("fev1", v, taken - (i + 1) * DAY) for i, v in enumerate((1.4, 1.5, 1.6))]
    assert spirometry(reading("fev1", 1.33, taken), context(*later, *earlier))
    assert spirometry(reading("fev1", 1.45, taken), context(*later, *earlier)) == []


def test_other_readings_and_no_reading_ask_for_nothing():
    ctx = context(*days_before("spo2", 99, 99, 99))
    assert spo2_drop(reading("pulse", 50), ctx) == []
    assert spo2_below_baseline(None, ctx) == []
    assert spirometry(None, ctx) == []


def test_a_reading_already_in_recent_is_not_part_of_its_own_baseline():
    today = reading("spo2", 89)
    assert spo2_below_baseline(today, context(*days_before("spo2", 93, 93, 93), today))


def test_an_sd_needs_two_readings_even_when_a_patient_allows_fewer():
    ctx = context(*days_before("fev1", 1.5), baseline_min_readings=1)
    assert spirometry(reading("fev1", 0.5), ctx) == []
