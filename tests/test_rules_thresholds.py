"""Absolute care-plan limits: red/yellow, low/high, strictly beyond a limit."""

from datetime import UTC, datetime

import pytest
from telekol.server.alerts.rules import PatientContext, Reading
from telekol.server.alerts.rules.thresholds import threshold
from telekol.server.alerts.triage import ThresholdSet

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
SPO2 = ThresholdSet("spo2", red_low=88, yellow_low=92, set_by="Dr. X",
                    set_at=datetime(2025, 11, 3, 9, 0, tzinfo=UTC))
PULSE = ThresholdSet("pulse", red_low=40, yellow_low=50, yellow_high=100, red_high=120)
BP_SYS = ThresholdSet("bp_sys", red_high=180, yellow_high=160)


def context() -> PatientContext:
    return PatientContext("p1", NOW, thresholds={"spo2": SPO2, "pulse": PULSE, "bp_sys": BP_SYS})


@pytest.mark.parametrize(("code", "value", "severity"), [
    ("spo2", 87, "red"), ("spo2", 88, "yellow"), ("spo2", 91, "yellow"), ("spo2", 92, None),
    ("pulse", 39, "red"), ("pulse", 40, "yellow"), ("pulse", 49, "yellow"), ("pulse", 50, None),
    ("pulse", 100, None), ("pulse", 101, "yellow"), ("pulse", 120, "yellow"), ("pulse", 121, "red"),
    ("bp_sys", 160, None), ("bp_sys", 161, "yellow"), ("bp_sys", 181, "red"),
    ("weight", 150, None),  # no limits in the care plan
])
def test_a_value_beyond_a_limit_asks_for_that_limits_colour(code, value, severity):
    found = threshold(Reading(code, value, "", NOW, NOW), context())
    assert [a.severity for a in found] == ([severity] if severity else [])
    assert all(a.rule == f"threshold:{code}" for a in found)


def test_the_reason_names_the_limit_and_who_set_it():
    (alert,) = threshold(Reading("spo2", 86, "%", NOW, NOW), context())
    assert alert.reason == "SpO2 86 % is below the red limit 88 % set by Dr. X on 03 Nov 2025"
    assert alert.details["limit"] == 88


def test_a_component_reading_is_labelled_with_its_component_name():
    (alert,) = threshold(Reading("bp_sys", 170, "mm[Hg]", NOW, NOW), context())
    assert alert.reason.startswith("Systolic blood pressure 170 mmHg is above the yellow limit")


def test_no_reading_asks_for_nothing():
    assert threshold(None, context()) == []
