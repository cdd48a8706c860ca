"""NEWS2 from the vital signs present: chart bands, Scale 2 on a clinician's flag, triggers."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.news2 import news2, score

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

# RCP NEWS2 Chart 1: both sides of every band edge.
# fmt: off
BAND_EDGES = [
    ("resp_rate", 8, 3), ("resp_rate", 9, 1), ("resp_rate", 11, 1), ("resp_rate", 12, 0),
    ("resp_rate", 20, 0), ("resp_rate", 21, 2), ("resp_rate", 24, 2), ("resp_rate", 25, 3),
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
    ("spo2", 96, 0), ("spo2", 100, 0),
    ("bp_sys", 90, 3), ("bp_sys", 91, 2), ("bp_sys", 100, 2), ("bp_sys", 101, 1),
    ("bp_sys", 110, 1), ("bp_sys", 111, 0), ("bp_sys", 219, 0), ("bp_sys", 220, 3),
    ("pulse", 40, 3), ("pulse", 41, 1), ("pulse", 50, 1), ("pulse", 51, 0), ("pulse", 90, 0),
    ("pulse", 91, 1), ("pulse", 110, 1), ("pulse", 111, 2), ("pulse", 130, 2), ("pulse", 131, 3),
    ("temperature", 35.0, 3), ("temperature", 35.1, 1), ("temperature", 36.0, 1),
    ("temperature", 36.1, 0), ("temperature", 38.0, 0), ("temperature", 38.1, 1),
    ("temperature", 39.0, 1), ("temperature", 39.1, 2),
]
SCALE_2_ON_AIR = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0),
                  (97, 0)]
# fmt: on


@pytest.mark.parametrize(("code", "value", "points"), BAND_EDGES)
def test_each_parameter_scores_as_on_the_rcp_chart(code, value, points):
    assert score(code, value) == points


@pytest.mark.parametrize(("value", "points"), SCALE_2_ON_AIR)
def test_spo2_scale_2_on_air_scores_as_on_the_rcp_chart(value, points):
    assert score("spo2", value, scale=2) == points


def vitals(**values: float) -> tuple[Reading, ...]:
    """Return readings taken a few minutes before NOW, one per keyword."""
    return tuple(Reading(code, v, "", NOW - (i + 1) * MINUTE, NOW - (i + 1) * MINUTE)
                 for i, (code, v) in enumerate(values.items()))


def run(current: tuple[str, float], recent: tuple[Reading, ...] = (), hypercapnic: bool = False,
        **overrides: float) -> list:
    ctx = PatientContext("p1", NOW, recent, hypercapnic=hypercapnic,
                         parameters=merge_parameters(default_parameters(), overrides))
    return news2(Reading(current[0], current[1], "", NOW, NOW), ctx)


@pytest.mark.parametrize(("current", "others", "severity", "total"), [
    (("pulse", 112), {"resp_rate": 22}, None, 4),  # 2 + 2, no single 3
    (("pulse", 112), {"resp_rate": 22, "temperature": 38.5}, "yellow", 5),
    (("pulse", 112), {"resp_rate": 22, "bp_sys": 105, "temperature": 38.5}, "yellow", 6),
    (("pulse", 112), {"resp_rate": 22, "bp_sys": 95, "temperature": 38.5}, "red", 7),
    (("pulse", 135), {}, "yellow", 3),  # a single parameter scoring 3
    (("pulse", 75), {"resp_rate": 16}, None, 0),
    (("weight", 80), {"pulse": 135}, None, None),  # not a NEWS2 parameter
])
def test_the_trigger_thresholds_map_to_severities(current, others, severity, total):
    found = run(current, vitals(**others))
    assert [a.severity for a in found] == ([severity] if severity else [])
    if found:
        assert found[0].rule == "news2"
        assert found[0].details["score"] == total


@pytest.mark.parametrize(("hypercapnic", "severity", "scale"), [
    (False, "yellow", 1),  # SpO2 88 scores 3 on scale 1
    (True, None, 2),  # and 0 on scale 2 (on air)
])
def test_scale_2_is_used_only_for_patients_marked_hypercapnic(hypercapnic, severity, scale):
    found = run(("spo2", 88), hypercapnic=hypercapnic)
    assert [a.severity for a in found] == ([severity] if severity else [])
    assert all(a.details["scale"] == scale for a in found)


def test_the_reason_lists_every_score_and_says_the_score_is_partial():
    (alert,) = run(("spo2", 85), vitals(pulse=112, resp_rate=22), hypercapnic=True)
    assert alert.reason == (
        "NEWS2 6 (medium risk, SpO2 scale 2): respiration rate 22 /min → 2, SpO2 85 % → 2, "
        "pulse 112 /min → 2; partial NEWS2 from 3 of 7 parameters (not measured: systolic BP, "
        "temperature, consciousness; air assumed)")
    assert alert.details["parameters_present"] == 3
    assert alert.details["oxygen"] == "air (assumed)"


@pytest.mark.parametrize(("minutes_apart", "total"), [(60, 5), (61, 3)])
def test_only_readings_from_the_same_session_are_combined(minutes_apart, total):
    at = NOW - minutes_apart * MINUTE
    earlier = (Reading("resp_rate", 22, "", at, at),)
    (alert,) = run(("pulse", 135), earlier)
    assert alert.details["score"] == total


def test_the_closest_reading_of_a_parameter_is_used():
    recent = (Reading("pulse", 135, "", NOW - 50 * MINUTE, NOW),
              Reading("pulse", 75, "", NOW - 5 * MINUTE, NOW))
    assert run(("resp_rate", 22), recent) == []  # pulse 75 scores 0: total 2


def test_per_patient_trigger_thresholds_change_the_outcome():
    recent = vitals(resp_rate=22, temperature=38.5)
    assert [a.severity for a in run(("pulse", 112), recent)] == ["yellow"]
    assert [a.severity for a in run(("pulse", 112), recent, news2_high=5)] == ["red"]
    assert run(("pulse", 112), recent, news2_medium=6) == []
