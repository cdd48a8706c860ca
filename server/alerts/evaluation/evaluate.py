"""Replay a synthetic cohort through the alert rules and compare rule sets (issue 5, item 6).

Every patient's readings go through the rules in time order, as ingest would run them, with the
COPD programme's default care-plan limits and `default_parameters()`;
server/alerts/evaluation/report.py scores the alerts (detection, lead time, alarm burden).
Synthetic data: a regression instrument for the rules, not a clinical claim.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from telekol.server.alerts.evaluation.cohort import Cohort, SyntheticPatient, generate_cohort
from telekol.server.alerts.evaluation.report import Alert, markdown, score
from telekol.server.alerts.rules import (
    baseline,
    cat,
    default_parameters,
    news2,
    symptoms,
    thresholds,
    weight,
)
from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.store import restates_limits, worse
from telekol.server.alerts.triage import AlertRequest, ThresholdSet
from telekol.server.care.programme import programme

Rule = Callable[[Reading | None, PatientContext], list[AlertRequest]]
Limits = Mapping[str, ThresholdSet]
WINDOW = timedelta(days=14)  # PatientContext.recent: about the last 14 days
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
    ("Care-plan limits only (COPD programme defaults)", frozenset({"threshold"})),
    ("Care-plan limits + baselines", frozenset({"threshold", "baseline"})),
    ("All rules (NEWS2 SpO2 scale 1 for everyone)",
     frozenset({"threshold", "baseline", "symptoms", "news2"})),
    ("All rules, NEWS2 scale 2 for hypercapnic patients",
     frozenset({"threshold", "baseline", "symptoms", "news2-scale2"})),
)


def programme_limits(name: str = "copd", variant: str | None = None,
                     ) -> dict[str, ThresholdSet]:
    """Return a programme's default care-plan limits (of a variant) as ThresholdSets."""
    found = programme(name)
    return {code: ThresholdSet(code, limits.get("red_low"), limits.get("yellow_low"),
                               limits.get("yellow_high"), limits.get("red_high"),
                               set_by=found.label)
            for code, limits in found.limits(variant).items()}


def enrolment_limits(patient: SyntheticPatient) -> Limits:
    """Return the limits enrolment gives: the hypercapnic variant for those so marked."""
    return programme_limits(variant="hypercapnic" if patient.hypercapnic else None)


def _family(code: str) -> str:
    """Readings a rule on `code` may look at; the rest of the window is irrelevant to it."""
    if code in news2.MEASURED:
        return "vitals"
    if code in symptoms.SYMPTOMS:
        return "symptoms"
    return "spirometry" if code in baseline.SPIROMETRY else code


def replay(patient: SyntheticPatient, limits: Limits | None = None) -> list[Alert]:
    """Run every rule group over the patient's sessions in time order (incremental window).

    Like ingest, the readings of one session (same `taken_at`) see each other, each rule asks
    for at most one alert per session (the worst), and a single-parameter NEWS2 trigger on a
    parameter with care-plan limits is dropped (`alert_store.restates_limits`). `recent` holds
    the previous 14 days of the reading's own family (vitals, symptoms, ...): the rules read
    nothing else, so this gives the same answers as the full window, faster.
    """
    limits = programme_limits() if limits is None else limits
    parameters = default_parameters()  # built once: a context per reading is the hot path
    windows: dict[str, deque[Reading]] = {}
    alerts: list[Alert] = []
    for taken_at, grouped in groupby(sorted(patient.readings, key=lambda r: r.taken_at),
                                     key=lambda r: r.taken_at):
        session = list(grouped)
        _add(windows, session, taken_at)
        chosen: dict[tuple[str, str], str] = {}
        for reading in session:
            ctx = PatientContext(patient.patient_id, taken_at,
                                 tuple(windows[_family(reading.code)]), limits, parameters)
            for group, request in _requests(reading, ctx, patient.hypercapnic):
                key = (group, request.rule)
                chosen[key] = worse(chosen.get(key, request.severity), request.severity)
        alerts += [Alert(group, rule, severity, taken_at)
                   for (group, rule), severity in chosen.items()]
    return alerts


def _add(windows: dict[str, deque[Reading]], session: list[Reading], now: datetime) -> None:
    """Add a session's readings to their families' windows, dropping what is too old."""
    for reading in session:
        window = windows.setdefault(_family(reading.code), deque())
        while window and window[0].taken_at < now - WINDOW:
            window.popleft()
        window.append(reading)


def _requests(reading: Reading, ctx: PatientContext,
              hypercapnic: bool) -> list[tuple[str, AlertRequest]]:
    """Return (group, request) for every yellow/red request the service would raise."""
    found = []
    for group, rules in GROUPS.items():
        run = replace(ctx, hypercapnic=True) if group == "news2-scale2" and hypercapnic else ctx
        found += [(group, r) for rule in rules for r in rule(reading, run)
                  if r.severity in ("yellow", "red") and not restates_limits(r, run)]
    return found


def evaluate(cohort: Cohort,
             limits_for: Callable[[SyntheticPatient], Limits] | None = None) -> dict[str, Any]:
    """Return the cohort summary and one result per rule set (JSON-ready).

    Every patient gets the limits enrolment gives them from the COPD programme (the
    hypercapnic variant for hypercapnic patients) unless `limits_for` says otherwise.
    """
    fired = {p.patient_id: replay(p, (limits_for or enrolment_limits)(p))
             for p in cohort.patients}
    resolve_after = timedelta(hours=default_parameters().auto_resolve_hours.value)
    results = [score(name, cohort, fired, groups, resolve_after) for name, groups in RULE_SETS]
    summary = {
        "patients": len(cohort.patients), "days": cohort.days, "seed": cohort.seed,
        "hypercapnic": sum(p.hypercapnic for p in cohort.patients),
        "exacerbations": sum(len(p.exacerbations) for p in cohort.patients),
        "bad_days": sum(len(p.bad_days) for p in cohort.patients),
        "readings": sum(len(p.readings) for p in cohort.patients),
        "limits": "per patient" if limits_for else (
            f"{programme('copd').label} (hypercapnic variant for hypercapnic patients)"),
        "auto_resolve_hours": default_parameters().auto_resolve_hours.value}
    return {"cohort": summary, "rule_sets": results}


def run_evaluate_rules(patients: int = 200, days: int = 90, seed: int = 1,
                       as_json: bool = False) -> int:
    """Generate the cohort, replay it and print the table (or JSON); the CLI entry point."""
    report = evaluate(generate_cohort(patients, days, seed))
    print(json.dumps(report, indent=2) if as_json else markdown(report), file=sys.stdout)
    return 0
