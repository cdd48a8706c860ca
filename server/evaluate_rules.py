"""Replay a synthetic cohort through the alert rules and compare rule sets (issue 5, item 6).

Per rule set: the share of scripted exacerbations detected (an alert from onset - 7 d to
onset + 1 d), the median lead time of the first such alert before onset, alerts per
patient-week (alarm burden) and false alerts per patient-week outside exacerbation windows.
An alert counts once per patient, rule and calendar day, like "one open alert per rule".
Synthetic data: a regression instrument for the rules, not a clinical claim.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from telekol.server.cohort import Cohort, SyntheticPatient, generate_cohort
from telekol.server.rules import baseline, cat, news2, symptoms, thresholds, weight
from telekol.server.rules.snapshot import PatientContext, Reading
from telekol.server.triage import AlertRequest, ThresholdSet

Rule = Callable[[Reading | None, PatientContext], list[AlertRequest]]
WINDOW = timedelta(days=14)  # PatientContext.recent: about the last 14 days
BEFORE, AFTER = timedelta(days=7), timedelta(days=1)  # detection window around onset
THRESHOLDS = {"spo2": ThresholdSet("spo2", red_low=88, yellow_low=92, set_by="evaluate-rules")}
# Rule groups; every rule runs once per reading and the rule sets pick groups.
GROUPS: dict[str, tuple[Rule, ...]] = {
    "threshold": (thresholds.threshold,),
    "baseline": (baseline.spo2_drop, baseline.spo2_below_baseline, baseline.spirometry,
                 weight.weight_gain, cat.cat_rise),
    "symptoms": (symptoms.symptoms,),
    "news2": (news2.news2,),
    "news2-scale2": (news2.news2,),  # with PatientContext.hypercapnic from the patient
}
RULE_SETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Absolute thresholds only (SpO2 red < 88, yellow < 92)", frozenset({"threshold"})),
    ("Thresholds + baselines", frozenset({"threshold", "baseline"})),
    ("All rules (NEWS2 SpO2 scale 1 for everyone)",
     frozenset({"threshold", "baseline", "symptoms", "news2"})),
    ("All rules, NEWS2 scale 2 for hypercapnic patients",
     frozenset({"threshold", "baseline", "symptoms", "news2-scale2"})),
)


@dataclass(frozen=True)
class Alert:
    """One rule firing on one reading, tagged with the rule group that produced it."""

    group: str
    rule: str
    severity: str
    taken_at: datetime


def _family(code: str) -> str:
    """Readings a rule on `code` may look at; the rest of the window is irrelevant to it."""
    if code in news2.MEASURED:
        return "vitals"
    if code in symptoms.SYMPTOMS:
        return "symptoms"
    return "spirometry" if code in baseline.SPIROMETRY else code


def replay(patient: SyntheticPatient) -> list[Alert]:
    """Run every rule group over the patient's readings in time order (incremental window).

    `recent` holds the previous 14 days of the reading's own family (vitals, symptoms, ...):
    the rules read nothing else, so this gives the same answers as the full window, faster.
    """
    windows: dict[str, deque[Reading]] = {}
    alerts: list[Alert] = []
    for reading in sorted(patient.readings, key=lambda r: r.taken_at):
        window = windows.setdefault(_family(reading.code), deque())
        while window and window[0].taken_at < reading.taken_at - WINDOW:
            window.popleft()
        ctx = PatientContext(patient.patient_id, reading.taken_at, tuple(window), THRESHOLDS)
        for group, rules in GROUPS.items():
            if group == "news2-scale2" and patient.hypercapnic:
                run = replace(ctx, hypercapnic=True)
            else:
                run = ctx
            alerts += [Alert(group, r.rule, r.severity, reading.taken_at)
                       for rule in rules for r in rule(reading, run)
                       if r.severity in ("yellow", "red")]
        window.append(reading)
    return alerts


def once_per_day(alerts: list[Alert], groups: frozenset[str]) -> list[Alert]:
    """Keep the first alert per rule and UTC day from the groups of a rule set."""
    first: dict[tuple[str, date], Alert] = {}
    for alert in sorted(alerts, key=lambda a: a.taken_at):
        if alert.group in groups:
            first.setdefault((alert.rule, alert.taken_at.date()), alert)
    return list(first.values())


def evaluate(cohort: Cohort) -> dict[str, Any]:
    """Return the cohort summary and one result per rule set (JSON-ready)."""
    fired = {p.patient_id: replay(p) for p in cohort.patients}
    weeks = len(cohort.patients) * cohort.days / 7
    results = [_score(name, cohort, fired, groups, weeks) for name, groups in RULE_SETS]
    summary = {
        "patients": len(cohort.patients), "days": cohort.days, "seed": cohort.seed,
        "hypercapnic": sum(p.hypercapnic for p in cohort.patients),
        "exacerbations": sum(len(p.exacerbations) for p in cohort.patients),
        "bad_days": sum(len(p.bad_days) for p in cohort.patients),
        "readings": sum(len(p.readings) for p in cohort.patients)}
    return {"cohort": summary, "rule_sets": results}


def _score(name: str, cohort: Cohort, fired: dict[str, list[Alert]], groups: frozenset[str],
           weeks: float) -> dict[str, object]:
    leads: list[float] = []
    total = false = 0
    busy = timedelta()
    for patient in cohort.patients:
        alerts = once_per_day(fired[patient.patient_id], groups)
        total += len(alerts)
        for episode in patient.exacerbations:
            hits = [a.taken_at for a in alerts
                    if episode.onset - BEFORE <= a.taken_at <= episode.onset + AFTER]
            if hits:
                leads.append((episode.onset - min(hits)) / timedelta(days=1))
        spans = [(e.onset - BEFORE, e.end) for e in patient.exacerbations]
        busy += sum((end - start for start, end in spans), timedelta())
        false += sum(not any(s <= a.taken_at <= e for s, e in spans) for a in alerts)
    episodes = sum(len(p.exacerbations) for p in cohort.patients)
    quiet_weeks = weeks - busy / timedelta(weeks=1)
    return {
        "rule_set": name, "groups": sorted(groups), "exacerbations": episodes,
        "detected": len(leads), "detected_share": len(leads) / episodes if episodes else 0.0,
        "median_lead_days": round(statistics.median(leads), 1) if leads else None,
        "alerts": total, "alerts_per_patient_week": round(total / weeks, 2) if weeks else 0.0,
        "false_alerts": false,
        "false_alerts_per_patient_week": round(false / quiet_weeks, 2) if quiet_weeks else 0.0}


def markdown(report: dict[str, Any]) -> str:
    """Return the report as a markdown table."""
    rows = ["| Rule set | Detected | Median lead before onset | Alerts / patient-week "
            "| False alerts / patient-week |", "|---|---|---|---|---|"]
    for r in report["rule_sets"]:
        lead = "–" if r["median_lead_days"] is None else f"{r['median_lead_days']:.1f} d"
        rows.append(f"| {r['rule_set']} | {r['detected_share']:.0%} ({r['detected']}/"
                    f"{r['exacerbations']}) | {lead} | {r['alerts_per_patient_week']:.2f} "
                    f"| {r['false_alerts_per_patient_week']:.2f} |")
    c = report["cohort"]
    rows.append(f"\nSynthetic cohort: {c['patients']} patients × {c['days']} days, "
                f"seed {c['seed']}, {c['exacerbations']} exacerbations, "
                f"{c['bad_days']} isolated bad days, {c['hypercapnic']} hypercapnic, "
                f"{c['readings']} readings.")
    return "\n".join(rows)


def run_evaluate_rules(patients: int = 200, days: int = 90, seed: int = 1,
                       as_json: bool = False) -> int:
    """Generate the cohort, replay it and print the table (or JSON); the CLI entry point."""
    report = evaluate(generate_cohort(patients, days, seed))
    print(json.dumps(report, indent=2) if as_json else markdown(report), file=sys.stdout)
    return 0
