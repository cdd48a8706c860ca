"""Build the FHIR R4 CarePlan of a shared care plan version (pure).

One CarePlan per episode (id = the episode id, meta.versionId = the plan version):
- each schedule entry is an activity: `detail.code` the measurement's LOINC coding (or the
  questionnaire), `detail.scheduledTiming` the times, weekdays, every N days and, as
  `boundsPeriod`, the plan days turned into dates from the episode's start;
- the limits of a measurement go on its activity: in words in `detail.description` and as
  numbers in the THRESHOLD_URL extension (measurement, redLow, yellowLow, yellowHigh,
  redHigh); limits of a measurement with no schedule get an activity without timing;
- the self-care plan is one activity per colour (SELF_CARE_SYSTEM), performed by the patient;
- relative limits are RULE_PARAMETER_URL extensions on the CarePlan (name, value);
- goals are contained Goal resources, and the notes are `note`.
docs/clinical.md describes the mapping for people.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from telekol.fhir.codes import MEASUREMENT_TYPES, component_for
from telekol.fhir.validation import validate_resource

THRESHOLD_URL = "https://telekol.dk/fhir/StructureDefinition/care-plan-threshold"
RULE_PARAMETER_URL = "https://telekol.dk/fhir/StructureDefinition/rule-parameter"
SELF_CARE_SYSTEM = "https://telekol.dk/fhir/CodeSystem/self-care-state"
QUESTIONNAIRE_SYSTEM = "https://telekol.dk/fhir/CodeSystem/questionnaire"
LIMIT_KEYS = {"red_low": "redLow", "yellow_low": "yellowLow", "yellow_high": "yellowHigh",
              "red_high": "redHigh"}
LIMIT_WORDS = {"red_low": "red below", "yellow_low": "yellow below",
               "yellow_high": "yellow above", "red_high": "red above"}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SELF_CARE_WORDS = {"green": "Self-care when green", "yellow": "Self-care when yellow",
                   "red": "Self-care when red"}


def care_plan_resource(*, episode_id: str, patient_id: str, active: bool, version: int,
                       content: dict[str, Any], episode_start: date, changed_at: str,
                       author_id: str | None = None, period_end: date | None = None,
                       ) -> dict[str, Any]:
    """Return a validated CarePlan for one version of an episode's plan."""
    patient = {"reference": f"Patient/{patient_id}"}
    goals = [{"resourceType": "Goal", "id": f"goal-{n}", "lifecycleStatus": "active",
              "description": {"text": text}, "subject": patient}
             for n, text in enumerate(content.get("goals", []), start=1)]
    plan: dict[str, Any] = {
        "resourceType": "CarePlan", "id": episode_id,
        "meta": {"versionId": str(version), "lastUpdated": changed_at},
        "status": "active" if active else "completed", "intent": "plan",
        "title": "COPD telemonitoring care plan", "subject": patient,
        "period": {"start": episode_start.isoformat(),
                   **({"end": period_end.isoformat()} if period_end else {})},
        "activity": _activities(content, episode_start, patient),
    }
    if goals:
        plan["contained"] = goals
        plan["goal"] = [{"reference": f"#{goal['id']}"} for goal in goals]
    if author_id:
        plan["author"] = {"reference": f"Practitioner/{author_id}"}
    if content.get("relative"):
        plan["extension"] = [{"url": RULE_PARAMETER_URL, "extension": [
            {"url": "name", "valueCode": name}, {"url": "value", "valueDecimal": value}]}
            for name, value in content["relative"].items()]
    if content.get("notes"):
        plan["note"] = [{"text": content["notes"]}]
    if not plan["activity"]:
        del plan["activity"]
    return validate_resource(plan)


def _activities(content: dict[str, Any], start: date,
                patient: dict[str, str]) -> list[dict[str, Any]]:
    thresholds: dict[str, dict[str, Any]] = content.get("thresholds", {})
    scheduled = {entry["code"] for entry in content.get("schedules", [])}
    found = [_scheduled(entry, start, _limits_of(entry["code"], thresholds))
             for entry in content.get("schedules", [])]
    for code, limits in thresholds.items():
        if _schedule_code(code) not in scheduled:
            found.append({"detail": {"kind": "ServiceRequest", "code": _code(code),
                                     "status": "in-progress", **_limits_detail({code: limits})}})
    for colour, text in content.get("self_care", {}).items():
        if text:
            found.append({"detail": {
                "code": {"coding": [{"system": SELF_CARE_SYSTEM, "code": colour}],
                         "text": SELF_CARE_WORDS.get(colour, colour)},
                "status": "in-progress", "performer": [patient], "description": text}})
    return found


def _schedule_code(reading_code: str) -> str:
    return "bp" if component_for(reading_code) is not None else reading_code


def _limits_of(code: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    return {c: limits for c, limits in thresholds.items() if _schedule_code(c) == code}


def _scheduled(entry: dict[str, Any], start: date, limits: dict[str, Any]) -> dict[str, Any]:
    repeat: dict[str, Any] = {
        "boundsPeriod": {"start": (start + timedelta(days=entry["from_day"])).isoformat()},
        "frequency": len(entry["times"]), "period": entry["every_days"], "periodUnit": "d",
        "timeOfDay": [f"{t}:00" for t in entry["times"]]}
    if entry.get("to_day") is not None:
        repeat["boundsPeriod"]["end"] = (start + timedelta(days=entry["to_day"])).isoformat()
    if entry.get("weekdays"):
        repeat["dayOfWeek"] = [WEEKDAYS[d] for d in entry["weekdays"]]
    detail = {"kind": "ServiceRequest" if entry["kind"] == "measurement" else "Task",
              "code": _code(entry["code"]), "status": "in-progress",
              "scheduledTiming": {"repeat": repeat}, **_limits_detail(limits)}
    return {"detail": detail}


def _code(code: str) -> dict[str, Any]:
    kind = MEASUREMENT_TYPES.get(code)
    component = component_for(code)
    if component is not None:
        return {"coding": [dict(c._asdict()) for c in component.codings],
                "text": component.display_en}
    if kind is not None:
        return {"coding": [dict(c._asdict()) for c in kind.codings], "text": kind.display_en}
    return {"coding": [{"system": QUESTIONNAIRE_SYSTEM, "code": code}], "text": code}


def _limits_detail(limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not limits:
        return {}
    words = []
    extensions = []
    for code, values in limits.items():
        present = [(name, values[name]) for name in LIMIT_KEYS if values.get(name) is not None]
        words.append(f"{code}: " + ", ".join(f"{LIMIT_WORDS[n]} {v:g}" for n, v in present))
        extensions.append({"url": THRESHOLD_URL, "extension": [
            {"url": "measurement", "valueCode": code},
            *({"url": LIMIT_KEYS[n], "valueDecimal": v} for n, v in present)]})
    return {"description": "Limits: " + "; ".join(words), "extension": extensions}
