"""The synthetic cohort and the rule evaluation over it (issue 5, item 6; issue 9, item 11)."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from telekol.server.alerts.evaluation.cohort import (
    START,
    Exacerbation,
    SyntheticPatient,
    generate_cohort,
)
from telekol.server.alerts.evaluation.evaluate import RULE_SETS, evaluate, programme_limits, replay
from telekol.server.alerts.evaluation.report import Alert, as_stored, once_per_day
from telekol.server.alerts.rules import Reading
from telekol.server.care.programme import programme
from telekol.server.ops.cli import main

THRESHOLDS_ONLY = RULE_SETS[0][1]
ALL_RULES = RULE_SETS[3][1]
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def reading(code: str, value: float, at: timedelta) -> Reading:
    return Reading(code, value, "", START + at, START + at)


def test_same_seed_same_cohort_and_report() -> None:
    first, second = generate_cohort(10, 30, seed=7), generate_cohort(10, 30, seed=7)
    assert first == second
    assert evaluate(first) == evaluate(second)
    assert generate_cohort(10, 30, seed=8) != first


def test_readings_are_in_time_order_and_onsets_inside_the_period() -> None:
    cohort = generate_cohort(10, 30, seed=1)
    for patient in cohort.patients:
        times = [r.taken_at for r in patient.readings]
        assert times == sorted(times)
        for episode in patient.exacerbations:
            assert START <= episode.onset <= START + 30 * DAY


def test_the_limits_are_the_copd_programme_defaults() -> None:
    limits = programme_limits()
    assert set(limits) == set(programme("copd").thresholds)
    for code, expected in programme("copd").thresholds.items():
        got = limits[code]
        assert (got.red_low, got.yellow_low, got.yellow_high, got.red_high) == tuple(
            expected.get(k) for k in ("red_low", "yellow_low", "yellow_high", "red_high"))


@pytest.mark.parametrize(("pulse", "severity"), [(100, None), (101, "yellow"), (131, "red")])
def test_the_programme_pulse_limits_apply_strictly(pulse: float, severity: str | None) -> None:
    patient = SyntheticPatient("p1", False, (reading("pulse", pulse, 7 * HOUR),))
    found = [a.severity for a in replay(patient) if a.rule == "threshold:pulse"]
    assert found == ([severity] if severity else [])


def test_steep_spo2_fall_is_detected_by_thresholds() -> None:
    onset = START + 20 * DAY
    spo2 = [95.0] * 17 + [93.0, 89.0, 85.0, 84.0]  # one reading a day, the last on the onset day
    readings = tuple(reading("spo2", v, i * DAY + 7 * HOUR) for i, v in enumerate(spo2))
    episode = Exacerbation(onset, prodrome_days=3, plateau_days=3, recovery_days=5,
                           spo2_drop=11, pulse_rise=0, fev1_fall=0, cat_rise=0)
    patient = SyntheticPatient("p1", False, readings, (episode,))
    alerts = once_per_day(replay(patient), THRESHOLDS_ONLY)
    assert [a.severity for a in alerts] == ["yellow", "red", "red"]
    assert min(a.taken_at for a in alerts) >= onset - 7 * DAY


def test_the_readings_of_one_diary_see_each_other_as_in_ingest() -> None:
    diary = tuple(reading(code, 1.0, 19 * HOUR) for code in
                  ("more_breathless", "more_sputum", "sputum_colour_changed"))
    patient = SyntheticPatient("p1", False, diary)
    assert [(a.rule, a.severity) for a in replay(patient)] == [("symptoms", "red")]


def test_a_single_parameter_news2_on_a_limited_parameter_is_not_counted() -> None:
    # SpO2 91 % scores 3 on NEWS2 scale 1; the care plan's SpO2 limits already judge it.
    patient = SyntheticPatient("p1", False, (reading("spo2", 91, 7 * HOUR),))
    assert [a.rule for a in replay(patient)] == ["threshold:spo2"]
    without_spo2 = {k: v for k, v in programme_limits().items() if k != "spo2"}
    assert {a.rule for a in replay(patient, without_spo2)} == {"news2"}


def firings(*hours: float) -> list[Alert]:
    return [Alert("symptoms", "symptoms", "red", START + h * HOUR) for h in hours]


@pytest.mark.parametrize(("hours", "per_day", "stored"), [
    ((19,), 1, 1),
    ((19, 20), 1, 1),  # a repeat the same day
    ((19, 19 + 23), 2, 1),  # the next day, before the automatic resolve: updates the open one
    ((19, 19 + 24), 2, 2),  # a day later: resolved meanwhile, a new alert
    ((19, 19 + 20, 19 + 40, 19 + 60), 4, 1),  # repeats keep it open
])
def test_alerts_count_per_day_and_as_stored(hours, per_day: int, stored: int) -> None:
    alerts = firings(*hours)
    assert len(once_per_day(alerts, ALL_RULES)) == per_day
    assert len(as_stored(alerts, ALL_RULES, timedelta(hours=24))) == stored


def test_stored_alerts_never_outnumber_alerts_per_day() -> None:
    report = evaluate(generate_cohort(20, 30, seed=2))
    for result in report["rule_sets"]:
        assert 0 < result["stored_alerts"] <= result["alerts"]
        assert result["false_stored_alerts"] <= result["false_alerts"]


def test_hypercapnic_patients_are_judged_against_the_programmes_hypercapnic_limits() -> None:
    cohort = generate_cohort(10, 30, seed=1, hypercapnic_share=1.0)
    general = programme_limits()
    assert programme_limits(variant="hypercapnic")["spo2"] == replace(
        general["spo2"], red_low=84, yellow_low=88)
    enrolled, everyone_general = evaluate(cohort), evaluate(cohort, limits_for=lambda p: general)
    assert everyone_general["cohort"]["limits"] == "per patient"
    assert enrolled["rule_sets"][0]["alerts"] < everyone_general["rule_sets"][0]["alerts"]


def test_cohort_without_exacerbations_detects_nothing_and_alerts_only_from_bad_days() -> None:
    quiet = {"exacerbation_weights": (1.0,), "hypercapnic_share": 0.0}
    calm = evaluate(generate_cohort(10, 30, seed=1, bad_day_rate=0.0, **quiet))
    assert all(r["detected"] == 0 and r["detected_share"] == 0.0 for r in calm["rule_sets"])
    assert calm["rule_sets"][0]["alerts"] == 0  # the limits never fire without bad days
    cohort = generate_cohort(10, 30, seed=1, bad_day_rate=0.1, **quiet)
    report = evaluate(cohort)
    assert report["cohort"]["exacerbations"] == 0
    thresholds = report["rule_sets"][0]
    assert thresholds["detected_share"] == 0.0 and thresholds["median_lead_days"] is None
    assert thresholds["alerts_per_patient_week"] > 0
    assert thresholds["false_alerts"] == thresholds["alerts"]
    for patient in cohort.patients:
        days = {a.taken_at.date() for a in once_per_day(replay(patient), THRESHOLDS_ONLY)}
        assert days <= set(patient.bad_days)


def test_json_has_the_keys(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate-rules", "--patients", "10", "--days", "30", "--seed", "1",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["cohort"]) >= {"patients", "days", "seed", "exacerbations", "bad_days",
                                     "limits", "auto_resolve_hours"}
    assert len(report["rule_sets"]) == len(RULE_SETS)
    for result in report["rule_sets"]:
        assert set(result) >= {"rule_set", "exacerbations", "detected", "detected_share",
                               "median_lead_days", "alerts_per_patient_week",
                               "false_alerts_per_patient_week", "stored_alerts_per_patient_week",
                               "false_stored_alerts_per_patient_week"}


def test_markdown_table(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate-rules", "--patients", "10", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Rule set | Detected |")
    assert "| Stored alerts / patient-week |" in out
    assert "Synthetic cohort: 10 patients × 30 days, seed 1" in out
    assert programme("copd").label in out
