"""Build the rules' `PatientContext` for one ingest batch from stored rows (few queries).

Per batch: the patients' care-plan limits, rule settings (hypercapnic flag, parameter
overrides) and about the last 14 days of readings, loaded once for every patient in the
batch; readings stored earlier in the same batch are added as they are processed, so two
readings of one batch see each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server.models import Observation, PatientRuleSettings, StoredResource, Threshold
from telekol.server.rules import (
    PatientContext,
    Reading,
    RuleParameters,
    default_parameters,
    merge_parameters,
)
from telekol.server.rules.symptoms import SYMPTOMS
from telekol.server.triage import ThresholdSet

HISTORY = timedelta(days=14)
# Questionnaire score rows whose total is itself a rule reading (the CAT); the symptom
# diary's count is not: its single answers are, read from the stored QuestionnaireResponse.
SCORE_CODES = {QUESTIONNAIRES["cat"].type_code: "cat"}
DIARY_URL = QUESTIONNAIRES["copd-symptoms"].url
# Diary linkId → the symptoms rule's code (the diary uses the rule's codes as linkIds).
DIARY_SYMPTOMS = {item.link_id: item.link_id for item in QUESTIONNAIRES["copd-symptoms"].items
                  if item.link_id in SYMPTOMS}
_BP_COMPONENTS = {c.codings[0].code: c.reading_code for c in MEASUREMENT_TYPES["bp"].components}


def threshold_set(row: Threshold) -> ThresholdSet:
    """Return a stored limits row as the rules' ThresholdSet."""
    return ThresholdSet(row.measurement, row.red_low, row.yellow_low, row.yellow_high,
                        row.red_high, row.set_by, row.set_at)


def parameters_for(settings: PatientRuleSettings | None) -> RuleParameters:
    """Return the group defaults merged with the patient's overrides, citing who set them."""
    defaults = default_parameters()
    if settings is None or not settings.overrides:
        return defaults
    who = settings.source or f"{settings.set_by}, {settings.set_at:%d %b %Y}".strip(", ")
    return merge_parameters(defaults, {k: float(v) for k, v in settings.overrides.items()},
                            source=who)


def readings_of(row: Observation) -> list[Reading]:
    """Map a stored Observation back to rule readings (BP → its two components)."""
    code = SCORE_CODES.get(row.type_code, row.type_code)
    kind = MEASUREMENT_TYPES.get(row.type_code)
    unit = kind.unit if kind else ""
    if row.type_code == "bp":
        resource = json.loads(row.resource)
        found = []
        for component in resource.get("component", []):
            reading_code = _BP_COMPONENTS.get(component["code"]["coding"][0]["code"])
            quantity = component.get("valueQuantity")
            if reading_code and quantity:
                found.append(Reading(reading_code, float(quantity["value"]), unit, row.effective,
                                     row.issued, device_id=row.device_id))
        return found
    if row.value is None or (kind is None and code not in SCORE_CODES.values()):
        return []
    return [Reading(code, float(row.value), unit, row.effective, row.issued,
                    device_id=row.device_id)]


def symptom_readings(answers: Iterable[tuple[str, Any]], taken_at: datetime,
                     received_at: datetime, device_id: str | None = None) -> list[Reading]:
    """Return the diary's answers as symptom readings: 1 = worse than usual, 0 = not."""
    return [Reading(DIARY_SYMPTOMS[link_id], 1.0 if value else 0.0, "", taken_at, received_at,
                    device_id=device_id)
            for link_id, value in answers if link_id in DIARY_SYMPTOMS]


def _diary_readings(row: StoredResource) -> list[Reading]:
    resource = json.loads(row.resource)
    if resource.get("questionnaire") != DIARY_URL or row.effective is None:
        return []
    answers = [(item["linkId"], item["answer"][0].get("valueBoolean"))
               for item in resource.get("item", []) if item.get("answer")]
    return symptom_readings(answers, row.effective, row.last_updated)


class BatchContexts:
    """The rule context of every patient in one batch, loaded with one query per table."""

    def __init__(self, session: Session, patient_ids: Iterable[str], now: datetime,
                 thresholds: Mapping[tuple[str, str], Threshold] | None = None) -> None:
        ids = set(patient_ids)
        self.now = now
        start = now - HISTORY
        if thresholds is None:
            thresholds = {(t.patient_id, t.measurement): t for t in session.exec(
                select(Threshold).where(col(Threshold.patient_id).in_(ids)))}
        self.thresholds: dict[str, dict[str, ThresholdSet]] = {}
        for (patient_id, code), row in thresholds.items():
            self.thresholds.setdefault(patient_id, {})[code] = threshold_set(row)
        self.settings = {s.patient_id: s for s in session.exec(
            select(PatientRuleSettings).where(col(PatientRuleSettings.patient_id).in_(ids)))}
        self.parameters = {pid: parameters_for(self.settings.get(pid)) for pid in ids}
        self.recent: dict[str, list[Reading]] = {pid: [] for pid in ids}
        for observation in session.exec(select(Observation).where(
                col(Observation.patient_id).in_(ids), col(Observation.effective) >= start)):
            self.recent[observation.patient_id].extend(readings_of(observation))
        for stored in session.exec(select(StoredResource).where(
                col(StoredResource.resource_type) == "QuestionnaireResponse",
                col(StoredResource.patient_id).in_(ids),
                col(StoredResource.effective) >= start)):
            self.recent[stored.patient_id or ""].extend(_diary_readings(stored))

    def add(self, patient_id: str, readings: Iterable[Reading]) -> None:
        """Remember readings just stored in this batch, for the readings after them."""
        self.recent.setdefault(patient_id, []).extend(readings)

    def context(self, patient_id: str) -> PatientContext:
        """Return the patient's snapshot at the batch's `now`."""
        settings = self.settings.get(patient_id)
        return PatientContext(
            patient_id=patient_id, now=self.now, recent=tuple(self.recent.get(patient_id, ())),
            thresholds=self.thresholds.get(patient_id, {}),
            parameters=self.parameters.get(patient_id) or parameters_for(settings),
            hypercapnic=bool(settings and settings.hypercapnic))
