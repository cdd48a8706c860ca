"""Symptom answers: yellow for worse symptoms, red from two Anthonisen cardinal symptoms."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.rules import PatientContext, Reading, default_parameters, merge_parameters
from telekol.server.rules.symptoms import symptoms

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def answer(code: str, yes: bool, hours_ago: float = 0) -> Reading:
    at = NOW - hours_ago * HOUR
    return Reading(code, 1 if yes else 0, "", at, at)


BREATH, SPUTUM, COLOUR = "more_breathless", "more_sputum", "sputum_colour_changed"


@pytest.mark.parametrize(("earlier", "current", "overrides", "severity"), [
    ((), answer(BREATH, True), {}, "yellow"),
    ((), answer("more_cough", True), {}, "yellow"),  # not a cardinal symptom
    ((), answer(BREATH, False), {}, None),  # a "no" asks for nothing
    ((answer(BREATH, True, 1),), answer(COLOUR, True), {}, "red"),
    ((answer("more_cough", True, 1), answer("swollen_ankles", True, 1)), answer(BREATH, True), {},
     "yellow"),  # one cardinal symptom, however many others
    ((answer(BREATH, True, 25),), answer(COLOUR, True), {}, "yellow"),  # too old to count
    ((answer(BREATH, True, 24),), answer(COLOUR, True), {}, "red"),  # just inside the window
    ((answer(BREATH, True, 3), answer(BREATH, False, 1)), answer(SPUTUM, True), {},
     "yellow"),  # the later "no" replaces the earlier "yes"
    ((answer(BREATH, True, 1),), answer(COLOUR, True), {"symptoms_red_count": 3},
     "yellow"),  # this patient: red only with all three
])
def test_symptom_answers_in_the_window(earlier, current, overrides, severity):
    ctx = PatientContext("p1", NOW, earlier,
                         parameters=merge_parameters(default_parameters(), overrides))
    found = symptoms(current, ctx)
    assert [a.severity for a in found] == ([severity] if severity else [])
    assert all(a.rule == "symptoms" for a in found)


def test_the_reason_lists_what_the_patient_reported():
    ctx = PatientContext("p1", NOW, (answer("more_breathless", True, 2),))
    (alert,) = symptoms(answer("sputum_colour_changed", True), ctx)
    assert alert.reason == ("Patient reports more breathless than usual, changed sputum colour "
                            "in the last 24 h (2 of 3 cardinal symptoms; red from 2)")
    assert alert.details["reported"] == ["more_breathless", "sputum_colour_changed"]


def test_measurements_ask_for_nothing():
    ctx = PatientContext("p1", NOW, (answer("more_breathless", True, 1),))
    assert symptoms(Reading("spo2", 88, "%", NOW, NOW), ctx) == []
    assert symptoms(None, ctx) == []
