"""Store questionnaire responses: ledger row, QuestionnaireResponse, score Observation.

Every door reaches `response_rows` through server/ingest/recorder.py (the MQTT gateway, the
patient's web form in server/ingest/self_report.py, telephone and paper entry in
server/ingest/phone_entry.py, which names the clinician as author).
`answer_readings` says what the alert rules read from a response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from telekol.fhir.questionnaire import (
    QUESTIONNAIRES,
    questionnaire_response,
    score,
    score_observation,
)
from telekol.fhir.validation import validate_resource
from telekol.server import events
from telekol.server.alerts.rule_context import symptom_readings
from telekol.server.alerts.rules import Reading
from telekol.server.device_messages.questionnaire_responses import QuestionnaireAnswers

# The ledger's device_id for answers a patient gave on the web pages. A colon cannot occur
# in an MQTT device id, so no device can ever collide with it.
WEB_SOURCE = "web:patient"


@dataclass(frozen=True)
class ResponseRows:
    """The rows one response is stored as: ledger, QuestionnaireResponse, score Observation."""

    ledger: dict[str, Any]
    response: dict[str, Any]  # StoredResource columns
    score: dict[str, Any]  # Observation columns
    resources: tuple[dict[str, Any], dict[str, Any]]  # (the response, the score) as FHIR


def response_rows(answers: QuestionnaireAnswers, *, patient_id: str, device_id: str | None,
                  received_at: datetime, now: datetime, new_id: Callable[[], str],
                  source: str | None = None, author: dict[str, str] | None = None,
                  ) -> ResponseRows:
    """Return the rows that store a response and its score (the caller inserts them).

    `source` names the ledger's sender when there is no device (default: the patient's
    web form); `author` replaces the response's author (a clinician who entered it), and
    is validated: the mapped resources themselves are proven at start-up.
    """
    source = device_id or source or WEB_SOURCE
    kind, key = answers.questionnaire, f"{source}-{answers.msg_id}"
    response_id, observation_id = new_id(), new_id()
    meta = {"versionId": "1", "lastUpdated": events.instant(now)}
    response = questionnaire_response(
        kind=kind, answers=answers.answers, response_id=response_id, key=key,
        patient_id=patient_id, device_id=device_id, authored=answers.taken_at_text)
    if author is not None:
        response["author"] = author
        validate_resource({**response, "meta": meta})
    response = {**response, "meta": meta}
    total = score(answers.answers)
    observation = {"resourceType": "Observation", "id": observation_id, "meta": meta,
                   **score_observation(kind=kind, total=total, response_id=response_id, key=key,
                                       patient_id=patient_id, device_id=device_id,
                                       effective=answers.taken_at_text,
                                       issued=events.instant(now) or "")}
    return ResponseRows(
        {"device_id": source, "msg_id": answers.msg_id, "patient_id": patient_id,
         "received_at": received_at, "taken_at": answers.taken_at},
        {"id": response_id, "resource_type": "QuestionnaireResponse", "patient_id": patient_id,
         "effective": answers.taken_at, "last_updated": now, "version_id": 1,
         "resource": _json(response)},
        {"id": observation_id, "patient_id": patient_id, "device_id": source,
         "msg_id": answers.msg_id, "type_code": QUESTIONNAIRES[kind].type_code,
         "effective": answers.taken_at, "issued": now, "value": float(total), "severity": None,
         "version_id": 1, "last_updated": now, "resource": _json(observation)},
        (response, observation))


def answer_readings(answers: QuestionnaireAnswers, total: int, received_at: datetime,
                    device_id: str | None = None) -> list[Reading]:
    """Return what the alert rules read from a response: the symptoms, or the CAT total."""
    if answers.questionnaire == "copd-symptoms":
        return symptom_readings(answers.answers, answers.taken_at, received_at, device_id)
    if QUESTIONNAIRES[answers.questionnaire].type_code == "cat":
        return [Reading("cat", float(total), "{score}", answers.taken_at, received_at,
                        device_id=device_id)]
    return []


def _json(resource: dict[str, Any]) -> str:
    return orjson.dumps(resource).decode()
