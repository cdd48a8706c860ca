"""Score the replayed alerts against the cohort's scripted exacerbations, and print the table.

Detection: an alert from onset - 7 d to onset + 1 d; lead: onset minus the first one. Burden per
patient-week, counted once per patient, rule and day, and as the service stores alerts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from telekol.server.alerts.evaluation.cohort import Cohort

BEFORE, AFTER = timedelta(days=7), timedelta(days=1)  # detection window around onset


@dataclass(frozen=True)
class Alert:
    """One rule firing on one measuring session, tagged with the rule group that produced it."""

    group: str
    rule: str
    severity: str
    taken_at: datetime


def once_per_day(alerts: list[Alert], groups: frozenset[str]) -> list[Alert]:
    """Keep the first alert per rule and UTC day from the groups of a rule set."""
    first: dict[tuple[str, date], Alert] = {}
    for alert in sorted(alerts, key=lambda a: a.taken_at):
        if alert.group in groups:
            first.setdefault((alert.rule, alert.taken_at.date()), alert)
    return list(first.values())


def as_stored(alerts: list[Alert], groups: frozenset[str], resolve_after: timedelta,
              ) -> list[Alert]:
    """Keep the alerts that open a stored alert: no unresolved one of the same rule exists,
    because the last firing is `resolve_after` or longer ago (scheduler's automatic resolve).

    Nobody resolves by hand here; a clinician who does makes the next firing a new alert.
    """
    last: dict[str, datetime] = {}
    opened = []
    for alert in sorted(alerts, key=lambda a: a.taken_at):
        if alert.group not in groups:
            continue
        previous = last.get(alert.rule)
        if previous is None or alert.taken_at - previous >= resolve_after:
            opened.append(alert)
        last[alert.rule] = alert.taken_at
    return opened


def score(name: str, cohort: Cohort, fired: dict[str, list[Alert]], groups: frozenset[str],
          resolve_after: timedelta) -> dict[str, object]:
    """Return one rule set's detection, lead time and burden (JSON-ready)."""
    weeks = len(cohort.patients) * cohort.days / 7
    leads: list[float] = []
    total = false = stored = false_stored = 0
    busy = timedelta()
    for patient in cohort.patients:
        alerts = once_per_day(fired[patient.patient_id], groups)
        opened = as_stored(fired[patient.patient_id], groups, resolve_after)
        for episode in patient.exacerbations:
            hits = [a.taken_at for a in alerts
                    if episode.onset - BEFORE <= a.taken_at <= episode.onset + AFTER]
            if hits:
                leads.append((episode.onset - min(hits)) / timedelta(days=1))
        spans = [(e.onset - BEFORE, e.end) for e in patient.exacerbations]
        busy += sum((end - start for start, end in spans), timedelta())
        total, stored = total + len(alerts), stored + len(opened)
        false += _outside(alerts, spans)
        false_stored += _outside(opened, spans)
    episodes = sum(len(p.exacerbations) for p in cohort.patients)
    quiet_weeks = weeks - busy / timedelta(weeks=1)
    return {
        "rule_set": name, "groups": sorted(groups), "exacerbations": episodes,
        "detected": len(leads), "detected_share": len(leads) / episodes if episodes else 0.0,
        "median_lead_days": round(statistics.median(leads), 1) if leads else None,
        "alerts": total, "alerts_per_patient_week": _rate(total, weeks),
        "false_alerts": false, "false_alerts_per_patient_week": _rate(false, quiet_weeks),
        "stored_alerts": stored, "stored_alerts_per_patient_week": _rate(stored, weeks),
        "false_stored_alerts": false_stored,
        "false_stored_alerts_per_patient_week": _rate(false_stored, quiet_weeks)}


def _outside(alerts: list[Alert], spans: list[tuple[datetime, datetime]]) -> int:
    """Return how many alerts fall outside every exacerbation window (false alerts)."""
    return sum(not any(start <= a.taken_at <= end for start, end in spans) for a in alerts)


def _rate(count: int, weeks: float) -> float:
    return round(count / weeks, 2) if weeks else 0.0


HEADER = ("| Rule set | Detected | Median lead before onset | Alerts / patient-week "
          "| False alerts / patient-week | Stored alerts / patient-week "
          "| False stored alerts / patient-week |")


def markdown(report: dict[str, Any]) -> str:
    """Return the report as a markdown table with a line on the cohort."""
    rows = [HEADER, "|---|---|---|---|---|---|---|"]
    for r in report["rule_sets"]:
        lead = "–" if r["median_lead_days"] is None else f"{r['median_lead_days']:.1f} d"
        rows.append(f"| {r['rule_set']} | {r['detected_share']:.0%} ({r['detected']}/"
                    f"{r['exacerbations']}) | {lead} | {r['alerts_per_patient_week']:.2f} "
                    f"| {r['false_alerts_per_patient_week']:.2f} "
                    f"| {r['stored_alerts_per_patient_week']:.2f} "
                    f"| {r['false_stored_alerts_per_patient_week']:.2f} |")
    c = report["cohort"]
    rows.append(f"\nSynthetic cohort: {c['patients']} patients × {c['days']} days, "
                f"seed {c['seed']}, {c['exacerbations']} exacerbations, "
                f"{c['bad_days']} isolated bad days, {c['hypercapnic']} hypercapnic, "
                f"{c['readings']} readings. Limits: {c['limits']}. Alerts count once per "
                f"patient, rule and day; stored alerts as the service keeps them (a repeat "
                f"updates the unresolved one, automatic resolve after "
                f"{c['auto_resolve_hours']:g} h).")
    return "\n".join(rows)
