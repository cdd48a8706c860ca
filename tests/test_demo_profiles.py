"""Demo patients' profiles and sessions: each named patient has one, and stable ones stay green."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from telekol.server.demo.profiles import (
    HISTORY_DAYS,
    PROFILES,
    SPO2_AT_FULL_WORSENING,
    Worsening,
    profile_for,
    vitals,
)
from telekol.server.demo.readings import ANSWERS, MEASUREMENTS, cat_answers, session
from telekol.server.demo.seed import PATIENTS, RULE_SETTINGS

MONDAY = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def test_every_named_demo_patient_has_a_profile() -> None:
    assert set(PROFILES) == {cpr for cpr, *_ in PATIENTS}


@pytest.mark.parametrize("archetype", ["stable", "borderline", "decliner", "exacerbation",
                                       "hypercapnic"])
def test_every_archetype_is_played_by_a_named_patient(archetype: str) -> None:
    assert any(p.archetype == archetype for p in PROFILES.values())


def test_the_hypercapnic_profile_is_the_patient_the_gp_marked_hypercapnic() -> None:
    [cpr] = [p.cpr for p in PROFILES.values() if p.archetype == "hypercapnic"]
    assert RULE_SETTINGS[cpr][0] is True


def test_a_worsening_ramps_up_holds_and_recovers() -> None:
    worsening = Worsening(start=10, ramp=4, hold=2, recover=4, peak=0.8)
    levels = [worsening.level(x) for x in (9, 10, 12, 14, 15, 18, 20, 25)]
    assert levels == [0.0, 0.0, 0.4, 0.8, 0.8, pytest.approx(0.4), 0.0, 0.0]


def test_a_full_worsening_takes_spo2_from_where_the_patient_is_now_to_the_yellow_band() -> None:
    for profile in PROFILES.values():
        now = vitals(profile, HISTORY_DAYS).spo2
        assert vitals(profile, HISTORY_DAYS, 1.0).spo2 == pytest.approx(
            min(SPO2_AT_FULL_WORSENING, now - 2))


def test_the_decliner_ends_lower_than_she_started() -> None:
    [profile] = [p for p in PROFILES.values() if p.archetype == "decliner"]
    start, end = vitals(profile, 0), vitals(profile, HISTORY_DAYS)
    assert end.spo2 < start.spo2 - 3 and end.fev1 < start.fev1 and end.cat > start.cat


def test_the_exacerbation_was_about_two_weeks_ago_and_is_over_by_now() -> None:
    [profile] = [p for p in PROFILES.values() if p.archetype == "exacerbation"]
    assert vitals(profile, HISTORY_DAYS - 14).spo2 < 89 < profile.baseline.spo2 - 5
    assert vitals(profile, HISTORY_DAYS) == profile.baseline


def test_an_extra_patient_gets_a_stable_profile_made_from_the_cpr() -> None:
    first, again, other = profile_for("0102439001"), profile_for("0102439001"), profile_for(
        "0203449002")
    assert first == again != other
    assert first.archetype == "stable" and first.baseline.spo2 > 94


def test_cat_answers_add_up_to_the_total_within_the_scale() -> None:
    rng = random.Random(3)
    for total in (0, 7, 23, 40, 45):
        answers = cat_answers(total, rng)
        assert len(answers) == 8 and all(0 <= v <= 5 for v in answers.values())
        assert sum(answers.values()) == min(total, 40)


def test_a_morning_session_on_a_monday_uses_the_oximeter_scale_bp_and_spirometer() -> None:
    profile = PROFILES["0101419996"]
    found = []
    for seed in range(20):  # a few sessions are skipped; the rest have the full kit
        found = session(profile, "morning", MONDAY, 0, 50, 0.0, random.Random(seed), "m")
        if found:
            break
    assert [body["msg_id"] for _, body in found] == ["m-oxi", "m-scale", "m-bp", "m-spiro"]
    assert {kind for kind, _ in found} == {MEASUREMENTS}


def test_an_evening_session_on_a_sunday_brings_the_diary_and_the_cat() -> None:
    profile = PROFILES["0101419996"]
    kinds = set()
    for seed in range(20):
        found = session(profile, "evening", MONDAY, 6, 50, 0.0, random.Random(seed), "e")
        kinds |= {body.get("questionnaire") for kind, body in found if kind == ANSWERS}
    assert kinds == {"copd-symptoms", "cat"}


def test_a_patient_who_feels_worse_reports_symptoms_and_takes_the_temperature() -> None:
    profile = PROFILES["1812479991"]
    found = session(profile, "morning", MONDAY, 1, HISTORY_DAYS, 1.0, random.Random(1), "w")
    assert [body["msg_id"] for _, body in found] == ["w-oxi", "w-scale", "w-spiro", "w-temp"]
    evening = session(profile, "evening", MONDAY, 1, HISTORY_DAYS, 1.0, random.Random(1), "w")
    diary = next(body["answers"] for kind, body in evening if kind == ANSWERS)
    assert diary == dict.fromkeys(diary, True)
