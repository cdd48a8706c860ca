"""The personal baseline line: what the relative rules compared each reading with."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.baseline import spirometry, spo2_below_baseline
from telekol.server.alerts.rules.personal_baseline import (
    BASELINE_CODES,
    personal_baseline,
    window_days,
)
from telekol.server.alerts.rules.weight import weight_gain

NOW = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
START = NOW - 30 * DAY


def daily(code: str, *values: float, last: datetime = NOW) -> list[Reading]:
    """Return one reading a day, the last value at `last`."""
    return [Reading(code, v, "", last - (len(values) - 1 - i) * DAY,
                    last - (len(values) - 1 - i) * DAY) for i, v in enumerate(values)]


def line(code: str, readings: list[Reading], start: datetime = START,
         **overrides: float) -> list[tuple[datetime, float]]:
    # The tables here are written for a baseline of at least three readings.
    parameters = merge_parameters(default_parameters(),
                                  {"baseline_min_readings": 3, **overrides})
    return [(p.taken_at, round(p.value, 6))
            for p in personal_baseline(code, readings, parameters, start)]


@pytest.mark.parametrize(("code", "values", "expected"), [
    # The mean of the previous 7 days, once 3 readings are there (the defaults).
    ("spo2", (94, 96, 92, 90), [None, None, None, 94.0]),
    ("fev1", (1.2, 1.4, 1.3, 1.1, 1.0), [None, None, None, 1.3, 1.25]),
    # Weight: the lowest of the previous 3 days; the first weight has nothing before it.
    ("weight", (72.0, 71.5, 73.0, 74.0, 75.0), [None, 72.0, 71.5, 71.5, 71.5]),
])
def test_each_reading_gets_the_reference_its_rule_uses(code, values, expected):
    readings = daily(code, *values)
    found = dict(line(code, readings))
    assert [found.get(r.taken_at) for r in readings] == expected


def test_a_reading_older_than_the_window_no_longer_counts():
    readings = daily("spo2", 80, 95, 95, 95, 95, 95, 95, 95, 95)  # 80 is 8 days before the last
    assert line("spo2", readings)[-1][1] == 95.0


def test_the_patients_own_parameters_change_the_window_and_the_count():
    readings = daily("spo2", 90, 96, 96)
    assert line("spo2", readings) == []  # 2 earlier readings are fewer than 3
    assert line("spo2", readings, baseline_min_readings=2)[-1][1] == 93.0
    assert line("spo2", readings, baseline_min_readings=2, baseline_days=1)[-1:] == []
    weights = daily("weight", 70.0, 75.0, 75.0, 75.0, 75.0)
    assert line("weight", weights)[-1][1] == 75.0
    assert line("weight", weights, weight_days=7)[-1][1] == 70.0


def test_only_readings_in_the_period_get_a_point_but_earlier_ones_count():
    readings = daily("spo2", 94, 96, 92, 90, 91)
    found = line("spo2", readings, start=NOW - DAY / 2)
    assert found == [(NOW, 93.0)]


def test_a_window_reaching_before_where_the_readings_were_cut_off_gets_no_point():
    readings = daily("spo2", 94, 96, 92, 90, 91, 93, 95, 97, 90, 91)
    cut = readings[2].taken_at
    parameters = default_parameters()
    points = personal_baseline("spo2", readings[2:], parameters, START, complete_from=cut)
    assert [p.taken_at for p in points] == [r.taken_at for r in readings[9:]]


def test_codes_no_relative_rule_uses_have_no_baseline():
    assert line("pulse", daily("pulse", 70, 72, 74, 76)) == []
    assert BASELINE_CODES == ("spo2", "fev1", "fvc", "weight")
    assert window_days("weight", default_parameters()) == 3
    assert window_days("fev1", default_parameters()) == 7
    assert window_days("spo2", merge_parameters(default_parameters(), {"baseline_days": 2.5})) == 2


def test_readings_of_other_codes_and_at_the_same_instant_are_not_earlier():
    readings = [*daily("spo2", 90, 92, 94, last=NOW - DAY), *daily("pulse", 50, 50, 50, 50),
                Reading("spo2", 60, "", NOW, NOW), Reading("spo2", 96, "", NOW, NOW)]
    found = line("spo2", readings)
    assert found == [(NOW, 92.0), (NOW, 92.0)]


# The line is the rules' own reference: the rule's reason details name the same number.
@pytest.mark.parametrize(("code", "history", "today", "rule", "key"), [
    ("spo2", (95, 96, 94, 97, 95, 96, 95), 88, spo2_below_baseline, "mean"),
    ("fev1", (1.42, 1.38, 1.45, 1.40, 1.39), 1.10, spirometry, "mean"),
    ("fvc", (2.52, 2.61, 2.48, 2.55, 2.50), 2.10, spirometry, "mean"),
    ("weight", (72.4, 72.1, 72.9), 74.0, weight_gain, "lowest"),
])
def test_the_line_is_what_the_rule_compared_with(code, history, today, rule, key):
    readings = daily(code, *history, today)
    (alert,) = rule(readings[-1], PatientContext("p1", NOW, tuple(readings[:-1])))
    assert line(code, readings)[-1] == (NOW, pytest.approx(alert.details[key]))
