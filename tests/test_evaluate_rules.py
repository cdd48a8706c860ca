"""The synthetic cohort and the rule evaluation over it (issue 5, item 6)."""

import json
from datetime import timedelta

from telekol.server.cli import main
from telekol.server.cohort import START, Exacerbation, SyntheticPatient, generate_cohort
from telekol.server.evaluate_rules import RULE_SETS, evaluate, once_per_day, replay
from telekol.server.rules import Reading

THRESHOLDS_ONLY = RULE_SETS[0][1]
DAY = timedelta(days=1)


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


def test_steep_spo2_fall_is_detected_by_thresholds() -> None:
    onset = START + 20 * DAY
    spo2 = [95.0] * 17 + [93.0, 89.0, 85.0, 84.0]  # one reading a day, the last on the onset day
    readings = tuple(Reading("spo2", v, "%", START + i * DAY + timedelta(hours=7),
                             START + i * DAY + timedelta(hours=7)) for i, v in enumerate(spo2))
    episode = Exacerbation(onset, prodrome_days=3, plateau_days=3, recovery_days=5,
                           spo2_drop=11, pulse_rise=0, fev1_fall=0, cat_rise=0)
    patient = SyntheticPatient("p1", False, readings, (episode,))
    alerts = once_per_day(replay(patient), THRESHOLDS_ONLY)
    assert [a.severity for a in alerts] == ["yellow", "red", "red"]
    assert min(a.taken_at for a in alerts) >= onset - 7 * DAY


def test_cohort_without_exacerbations_detects_nothing_and_alerts_only_from_bad_days() -> None:
    quiet = {"exacerbation_weights": (1.0,), "hypercapnic_share": 0.0}
    calm = evaluate(generate_cohort(10, 30, seed=1, bad_day_rate=0.0, **quiet))
    assert all(r["detected"] == 0 and r["detected_share"] == 0.0 for r in calm["rule_sets"])
    assert calm["rule_sets"][0]["alerts"] == 0  # SpO2 limits never fire without bad days
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
    assert set(report["cohort"]) >= {"patients", "days", "seed", "exacerbations", "bad_days"}
    assert len(report["rule_sets"]) == len(RULE_SETS)
    for result in report["rule_sets"]:
        assert set(result) >= {"rule_set", "exacerbations", "detected", "detected_share",
                               "median_lead_days", "alerts_per_patient_week",
                               "false_alerts_per_patient_week"}


def test_markdown_table(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate-rules", "--patients", "10", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Rule set | Detected |")
    assert "Synthetic cohort: 10 patients × 30 days, seed 1" in out
