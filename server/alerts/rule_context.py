"""The rules' inputs per patient: limits, parameters, care team and 14 days of readings.

`load_inputs` reads them for some patients with one query per table, and the history as
the few columns the rules need (the FHIR JSON only of blood-pressure panels, whose second
value lives there). `BatchContexts` hands them to the Recorder for one transaction:
readings stored earlier in the transaction are added as they are processed, so two
readings of one batch see each other. The gateway keeps the inputs between batches
(server/alerts/context_cache.py); the web doors load them per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import case
from sqlmodel import Session, col, select
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    RuleParameters,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.snapshot import ReadingIndex
from telekol.server.alerts.rules.symptoms import SYMPTOMS
from telekol.server.alerts.triage import ThresholdSet
from telekol.server.care.access import team_organizations
from telekol.server.models import (
    Observation,
    Patient,
    PatientRuleSettings,
    StoredResource,
    Threshold,
)

HISTORY = timedelta(days=14)
# Questionnaire score rows whose total is itself a rule reading (the CAT); the symptom
# diary's count is not: its single answers are, read from the stored QuestionnaireResponse.
SCORE_CODES = {QUESTIONNAIRES["cat"].type_code: "cat"}
DIARY_URL = QUESTIONNAIRES["copd-symptoms"].url
# Diary linkId → the symptoms rule's code (the diary uses the rule's codes as linkIds).
DIARY_SYMPTOMS = {item.link_id: item.link_id for item in QUESTIONNAIRES["copd-symptoms"].items
                  if item.link_id in SYMPTOMS}
_BP_COMPONENTS = {c.codings[0].code: c.reading_code for c in MEASUREMENT_TYPES["bp"].components}
Resource = str | dict[str, Any] | None  # stored JSON text, or the dict it was made from


class StoredReading(NamedTuple):
    """The columns of a stored Observation the rules read (`resource` only for bp)."""

    patient_id: str
    type_code: str
    value: float | None
    effective: datetime
    issued: datetime
    device_id: str | None
    resource: Resource = None


class StoredAnswers(NamedTuple):
    """The columns of a stored QuestionnaireResponse the symptom rules read."""

    patient_id: str
    effective: datetime | None
    last_updated: datetime
    resource: Resource


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


def readings_of(row: StoredReading | Observation) -> list[Reading]:
    """Map a stored Observation back to rule readings (BP → its two components)."""
    code = SCORE_CODES.get(row.type_code, row.type_code)
    kind = MEASUREMENT_TYPES.get(row.type_code)
    unit = kind.unit if kind else ""
    if row.type_code == "bp":
        found = []
        for component in _parsed(row.resource).get("component", []):
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


def diary_readings(row: StoredAnswers) -> list[Reading]:
    """Return the symptom readings of a stored response (none unless it is the diary)."""
    resource = _parsed(row.resource)
    if resource.get("questionnaire") != DIARY_URL or row.effective is None:
        return []
    answers = [(item["linkId"], item["answer"][0].get("valueBoolean"))
               for item in resource.get("item", []) if item.get("answer")]
    return symptom_readings(answers, row.effective, row.last_updated)


def _parsed(resource: Resource) -> dict[str, Any]:
    if isinstance(resource, dict):
        return resource
    return orjson.loads(resource) if resource else {}


@dataclass
class PatientInputs:
    """What the Recorder needs of one patient besides the reading: who, limits, history."""

    patient: Patient
    team: list[str]  # care-team organisations consent lets see the data (event rooms)
    thresholds: dict[str, ThresholdSet]
    parameters: RuleParameters
    hypercapnic: bool
    history: ReadingIndex  # readings taken from `now - HISTORY` on
    versions: tuple[int, int] = (0, 0)  # (settings, readings) when loaded or last kept

    def working_copy(self, start: datetime) -> PatientInputs:
        """Return a copy whose history a transaction may add to (pruned to `start`)."""
        return replace(self, history=self.history.since(start))


def load_inputs(session: Session, patient_ids: Iterable[str], now: datetime,
                versions: Mapping[str, tuple[int, int]] | None = None,
                ) -> dict[str, PatientInputs]:
    """Load the inputs of the patients that exist, with one query per table."""
    ids = set(patient_ids)
    if not ids:
        return {}
    patients = {p.id: p for p in session.exec(select(Patient).where(col(Patient.id).in_(ids)))}
    teams = team_organizations(session, patients)
    limits: dict[str, dict[str, ThresholdSet]] = {pid: {} for pid in patients}
    for row in session.exec(select(Threshold).where(col(Threshold.patient_id).in_(patients))):
        limits[row.patient_id][row.measurement] = threshold_set(row)
    settings = {s.patient_id: s for s in session.exec(
        select(PatientRuleSettings).where(col(PatientRuleSettings.patient_id).in_(patients)))}
    history = _history(session, patients, now - HISTORY)
    return {pid: PatientInputs(
        patient, teams.get(pid, []), limits[pid], parameters_for(settings.get(pid)),
        bool(settings.get(pid) and settings[pid].hypercapnic), ReadingIndex(history[pid]),
        (versions or {}).get(pid, (0, 0))) for pid, patient in patients.items()}


def _history(session: Session, patient_ids: Iterable[str],
             start: datetime) -> dict[str, list[Reading]]:
    found: dict[str, list[Reading]] = {pid: [] for pid in patient_ids}
    bp_only = case((col(Observation.type_code) == "bp", col(Observation.resource)), else_=None)
    rows = session.execute(select(  # type: ignore[call-overload]
        Observation.patient_id, Observation.type_code, Observation.value, Observation.effective,
        Observation.issued, Observation.device_id, bp_only).where(
            col(Observation.patient_id).in_(found), col(Observation.effective) >= start))
    for row in rows:
        found[row[0]].extend(readings_of(StoredReading(*row)))
    answers = session.execute(select(
        StoredResource.patient_id, StoredResource.effective, StoredResource.last_updated,
        StoredResource.resource).where(
            col(StoredResource.resource_type) == "QuestionnaireResponse",
            col(StoredResource.patient_id).in_(found), col(StoredResource.effective) >= start))
    for answer in answers:
        found[answer[0]].extend(diary_readings(StoredAnswers(*answer)))
    return found


class BatchContexts:
    """The rule inputs of every patient in one transaction, and the snapshots made of them."""

    def __init__(self, now: datetime, inputs: Mapping[str, PatientInputs]) -> None:
        self.now = now
        self.inputs = dict(inputs)

    @classmethod
    def load(cls, session: Session, patient_ids: Iterable[str], now: datetime) -> BatchContexts:
        """Load the inputs from the database (a door without a kept context)."""
        return cls(now, load_inputs(session, patient_ids, now))

    def add(self, patient_id: str, readings: Iterable[Reading]) -> None:
        """Remember readings just stored in this batch, for the readings after them."""
        history = self.inputs[patient_id].history
        for reading in readings:
            history.add(reading)

    def context(self, patient_id: str) -> PatientContext:
        """Return the patient's snapshot at the batch's `now` (no copy, no sort)."""
        found = self.inputs[patient_id]
        return PatientContext(
            patient_id=patient_id, now=self.now, recent=found.history.recent,
            thresholds=found.thresholds, parameters=found.parameters,
            hypercapnic=found.hypercapnic, index=found.history)
