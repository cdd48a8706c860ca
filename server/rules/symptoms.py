"""Symptom answers: worse than usual, counting the Anthonisen cardinal symptoms."""

from __future__ import annotations

from datetime import timedelta

from telekol.server.rules.snapshot import PatientContext, Reading
from telekol.server.triage import AlertRequest

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
    """Ask for an alert on a worse-symptom answer: red from N cardinal symptoms, else yellow."""
    if reading is None or reading.code not in SYMPTOMS or reading.value <= 0:
        return []
    hours = ctx.parameters.symptom_window_hours.value
    reported = _reported(reading, ctx, timedelta(hours=hours))
    cardinal = [code for code in CARDINAL if code in reported]
    red_from = ctx.parameters.symptoms_red_count.value
    severity = "red" if len(cardinal) >= red_from else "yellow"
    words = ", ".join(SYMPTOMS[code][0] for code in SYMPTOMS if code in reported)
    reason = (f"Patient reports {words} in the last {hours:g} h "
              f"({len(cardinal)} of {len(CARDINAL)} cardinal symptoms; red from {red_from:g})")
    details: dict[str, object] = {
        "reported": [c for c in SYMPTOMS if c in reported], "cardinal": len(cardinal),
        "window_hours": hours, "red_from": red_from}
    return [AlertRequest("symptoms", severity, reason, details)]


def _reported(reading: Reading, ctx: PatientContext, window: timedelta) -> set[str]:
    """Return the symptom codes whose latest answer in the window is yes."""
    start = reading.taken_at - window
    answers = sorted((r for r in ctx.recent
                      if r.code in SYMPTOMS and start <= r.taken_at <= reading.taken_at),
                     key=lambda r: r.taken_at)
    latest = {r.code: r.value for r in answers}
    latest[reading.code] = reading.value
    return {code for code, value in latest.items() if value > 0}
