"""Symptom answers: worse than usual, counting the Anthonisen cardinal symptoms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import moment
from telekol.server.alerts.triage import AlertRequest

# reading code → (what the patient reported, Anthonisen cardinal symptom?). Answer 1 = yes.
# The codes are the linkIds of the symptom diary in fhir/questionnaire.py, plus two TELBIL items.
# Sources: TELBIL Table 1 (feeling worse, breathing difficulty, oedema, worse cough, more sputum,
# change in sputum colour); Anthonisen 1987 [S] for the three cardinal symptoms.
SYMPTOMS: dict[str, tuple[str, bool]] = {
    "more_breathless": ("more breathless than usual", True),
    "more_sputum": ("more sputum than usual", True),
    "sputum_colour_changed": ("changed sputum colour", True),
    "more_cough": ("worse cough", False),
    "feeling_worse": ("feeling worse", False),
    "swollen_ankles": ("swollen ankles or legs", False),
}
CARDINAL = tuple(code for code, (_, cardinal) in SYMPTOMS.items() if cardinal)


def symptoms(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for an alert on a worse-symptom answer: red from N cardinal symptoms at once; below
    that yellow, once worse symptoms were also reported on an earlier day (a one-day blip waits)."""
    if reading is None or reading.code not in SYMPTOMS or reading.value <= 0:
        return []
    p = ctx.parameters
    reported = _reported(reading, ctx, timedelta(hours=p.symptom_window_hours.value))
    cardinal = len([code for code in CARDINAL if code in reported])
    persist = p.symptom_persist_hours.value
    earlier = _earlier_day(reading, ctx, timedelta(hours=persist))
    severity = "red" if cardinal >= p.symptoms_red_count.value else "yellow"
    if severity == "yellow" and persist > 0 and earlier is None:
        return []
    details: dict[str, object] = {
        "reported": [c for c in SYMPTOMS if c in reported], "cardinal": cardinal,
        "cardinal_total": len(CARDINAL), "window_hours": p.symptom_window_hours.value,
        "red_from": p.symptoms_red_count.value, "persist_hours": persist,
        "earlier_taken_at": None if earlier is None else earlier.taken_at.isoformat()}
    return [AlertRequest("symptoms", severity, _reason(details, severity, earlier, ctx), details)]


def _reason(details: dict[str, Any], severity: str, earlier: Reading | None,
            ctx: PatientContext) -> str:
    words = ", ".join(SYMPTOMS[code][0] for code in details["reported"])
    also = ("" if earlier is None else
            f", and worse symptoms on an earlier day ({moment(ctx.local(earlier.taken_at))})")
    persist = details["persist_hours"]
    rule = (f"; yellow when reported on two days within {persist:g} h"
            if severity == "yellow" and persist > 0 else "")
    return (f"Patient reports {words} in the last {details['window_hours']:g} h{also} "
            f"({details['cardinal']} of {details['cardinal_total']} cardinal symptoms; "
            f"red from {details['red_from']:g}{rule})")


def _reported(reading: Reading, ctx: PatientContext, window: timedelta) -> set[str]:
    """Return the symptom codes whose latest answer in the window is yes."""
    start = reading.taken_at - window
    answers = sorted((r for r in ctx.recent
                      if r.code in SYMPTOMS and start <= r.taken_at <= reading.taken_at),
                     key=lambda r: r.taken_at)
    latest = {r.code: r.value for r in answers}
    latest[reading.code] = reading.value
    return {code for code, value in latest.items() if value > 0}


def _earlier_day(reading: Reading, ctx: PatientContext, window: timedelta) -> Reading | None:
    """Return the latest worse-symptom answer of an earlier calendar day within the window."""
    today = ctx.local(reading.taken_at).date()
    found = [r for r in ctx.recent if r.code in SYMPTOMS and r.value > 0
             and reading.taken_at - window <= r.taken_at < reading.taken_at
             and ctx.local(r.taken_at).date() < today]
    return max(found, key=lambda r: r.taken_at, default=None)
