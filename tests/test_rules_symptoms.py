"""Symptom answers: red from two Anthonisen cardinal symptoms at once; below that yellow once
worse symptoms were reported on two days."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.symptoms import symptoms

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)  # 08:00 in Copenhagen
HOUR = timedelta(hours=1)
AT_ONCE = {"symptom_persist_hours": 0}  # the rule before persistence: yellow at the first answer


def answer(code: str, yes: bool, hours_ago: float = 0) -> Reading:
    at = NOW - hours_ago * HOUR
    return Reading(code, 1 if yes else 0, "", at, at)


BREATH, SPUTUM, COLOUR = "more_breathless", "more_sputum", "sputum_colour_changed"


@pytest.mark.parametrize(("earlier", "current", "overrides", "severity"), [
    ((), answer(BREATH, True), {}, None),  # one day, one cardinal symptom: waits for a second
    ((), answer("more_cough", True), {}, None),  # one day, not a cardinal symptom
    ((answer(BREATH, True, 24),), answer(BREATH, True), {}, "yellow"),  # yesterday too
    ((answer(SPUTUM, True, 24),), answer("more_cough", True), {}, "yellow"),  # any symptom
    ((answer(BREATH, True, 48),), answer(BREATH, True), {}, "yellow"),  # just inside 48 h
    ((answer(BREATH, True, 49),), answer(BREATH, True), {}, None),  # too long ago
    ((answer(BREATH, False, 24),), answer(BREATH, True), {}, None),  # yesterday was a "no"
    ((answer(BREATH, True, 3),), answer(SPUTUM, False), {}, None),  # a "no" asks for nothing
    ((answer("more_cough", True, 7),), answer(BREATH, True), {}, None),  # 01:00: same day
    ((answer("more_cough", True, 9),), answer(BREATH, True), {}, "yellow"),  # 23:00 the day before
    ((), answer(BREATH, True), AT_ONCE, "yellow"),
    ((), answer("more_cough", True), AT_ONCE, "yellow"),
    ((), answer(BREATH, False), AT_ONCE, None),
    ((answer(BREATH, True, 1),), answer(COLOUR, True), {}, "red"),  # red at once
    ((answer("more_cough", True, 20), answer("swollen_ankles", True, 20)), answer(BREATH, True),
     {}, "yellow"),  # one cardinal symptom, however many others
    ((answer(BREATH, True, 25),), answer(COLOUR, True), {}, "yellow"),  # too old to count twice
    ((answer(BREATH, True, 24),), answer(COLOUR, True), {}, "red"),  # just inside the window
    ((answer(BREATH, True, 3), answer(BREATH, False, 1)), answer(SPUTUM, True), AT_ONCE,
     "yellow"),  # the later "no" replaces the earlier "yes"
    ((answer(BREATH, True, 1),), answer(COLOUR, True), {"symptoms_red_count": 3, **AT_ONCE},
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
    assert alert.details["earlier_taken_at"] is None


def test_a_yellow_reason_says_when_worse_symptoms_were_reported_before():
    ctx = PatientContext("p1", NOW, (answer("more_sputum", True, 30),))
    (alert,) = symptoms(answer("more_sputum", True), ctx)
    assert alert.reason == ("Patient reports more sputum than usual in the last 24 h, and worse "
                            "symptoms on an earlier day (02:00 on 03 Nov 2025) (1 of 3 cardinal "
                            "symptoms; red from 2; yellow when reported on two days within 48 h)")
    assert alert.details["earlier_taken_at"] == (NOW - 30 * HOUR).isoformat()


def test_every_number_in_a_reason_is_in_the_details():
    ctx = PatientContext("p1", NOW, (answer("more_sputum", True, 30),))
    (alert,) = symptoms(answer("more_breathless", True), ctx)
    reason = alert.reason.split(" (02:00 on 03 Nov 2025)")  # the time is `earlier_taken_at`
    numbers = {float(n) for part in reason for n in re.findall(r"\d+(?:\.\d+)?", part)}
    values = {float(v) for v in alert.details.values() if isinstance(v, int | float)}
    assert numbers <= values, numbers - values
    assert alert.details["earlier_taken_at"] == (NOW - 30 * HOUR).isoformat()


def test_measurements_ask_for_nothing():
    ctx = PatientContext("p1", NOW, (answer("more_breathless", True, 1),))
    assert symptoms(Reading("spo2", 88, "%", NOW, NOW), ctx) == []
    assert symptoms(None, ctx) == []
