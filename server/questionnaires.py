"""Store questionnaire responses from any door: ledger row, QuestionnaireResponse, score.

The MQTT gateway reaches `record_response` through the ingest batch; the patient's web
form reaches it through `QuestionnaireService.submit`, which runs the answers through
the same payload parser devices use, so both doors accept exactly the same responses.
Answers a patient gave by telephone or on paper are entered by a clinician through
server/phone_entry.py, which stores them with `record_entered_response`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telekol.device_gateway.questionnaire_payload import (
    QuestionnaireAnswers,
    Rejection,
    parse_questionnaire_responses,
)
from telekol.fhir.practitioner import reference
from telekol.fhir.questionnaire import (
    QUESTIONNAIRES,
    questionnaire_response,
    score,
    score_observation,
)
from telekol.fhir.validation import validate_resource
from telekol.server import events
from telekol.server.access import team_organizations
from telekol.server.db import utcnow
from telekol.server.fhir_search import MANUAL_DEVICE
from telekol.server.manual_entry import provenance_row
from telekol.server.models import (
    InboundMessage,
    Observation,
    Patient,
    StoredResource,
    User,
)
from telekol.server.rule_context import symptom_readings
from telekol.server.rules import Reading

# The ledger's device_id for answers a patient gave on the web pages. A colon cannot occur
# in an MQTT device id, so no device can ever collide with it.
WEB_SOURCE = "web:patient"


class InvalidAnswers(ValueError):
    """A web submission that does not answer the questionnaire; args[0] lists why."""


@dataclass(frozen=True)
class Submission:
    """A stored web submission: the score and the live event to push."""

    kind: str
    total: int
    observation_id: str
    event: dict[str, Any]


def record_response(session: Session, answers: QuestionnaireAnswers, *, patient_id: str,
                    device_id: str | None, received_at: datetime, now: datetime,
                    new_id: Callable[[], str], source: str | None = None,
                    author: dict[str, str] | None = None) -> Observation:
    """Add the ledger row, the QuestionnaireResponse and the score Observation; return it.

    `source` names the ledger's sender when there is no device (default: the patient's
    web form); `author` replaces the response's author (a clinician who entered it).
    """
    source = device_id or source or WEB_SOURCE
    session.add(InboundMessage(device_id=source, msg_id=answers.msg_id, patient_id=patient_id,
                               received_at=received_at, taken_at=answers.taken_at))
    kind, key = answers.questionnaire, f"{source}-{answers.msg_id}"
    response_id, observation_id = new_id(), new_id()
    meta = {"versionId": "1", "lastUpdated": events.instant(now)}
    response = questionnaire_response(
        kind=kind, answers=answers.answers, response_id=response_id, key=key,
        patient_id=patient_id, device_id=device_id, authored=answers.taken_at_text)
    if author is not None:
        response["author"] = author
    session.add(StoredResource(
        id=response_id, resource_type="QuestionnaireResponse", patient_id=patient_id,
        effective=answers.taken_at, last_updated=now, resource=_json({**response, "meta": meta})))
    total = score(answers.answers)
    observation = {"resourceType": "Observation", "id": observation_id, "meta": meta,
                   **score_observation(kind=kind, total=total, response_id=response_id, key=key,
                                       patient_id=patient_id, device_id=device_id,
                                       effective=answers.taken_at_text,
                                       issued=events.instant(now) or "")}
    row = Observation(
        id=observation_id, patient_id=patient_id, device_id=source, msg_id=answers.msg_id,
        type_code=QUESTIONNAIRES[kind].type_code, effective=answers.taken_at, issued=now,
        value=float(total), last_updated=now, resource=_json(observation))
    session.add(row)
    return row


def record_entered_response(session: Session, user: User, answers: QuestionnaireAnswers, *,
                            patient_id: str, method: str, now: datetime,
                            new_id: Callable[[], str]) -> Observation:
    """Store answers a clinician entered for the patient, with a Provenance; return the score.

    The response's author is the clinician and its source the patient (FHIR: the person
    who recorded the answers and the one who gave them); the Provenance adds the method.
    """
    row = record_response(session, answers, patient_id=patient_id, device_id=None,
                          received_at=now, now=now, new_id=new_id, source=MANUAL_DEVICE,
                          author=reference("Practitioner", str(user.id), user.display_name))
    response_id = json.loads(row.resource)["derivedFrom"][0]["reference"]
    session.add(provenance_row(user, patient_id, [response_id, f"Observation/{row.id}"],
                               method=method, now=now, provenance_id=new_id(),
                               what="Answers"))
    return row


def answer_readings(answers: QuestionnaireAnswers, total: int, received_at: datetime,
                    device_id: str | None = None) -> list[Reading]:
    """Return what the alert rules read from a response: the symptoms, or the CAT total."""
    if answers.questionnaire == "copd-symptoms":
        return symptom_readings(answers.answers, answers.taken_at, received_at, device_id)
    if QUESTIONNAIRES[answers.questionnaire].type_code == "cat":
        return [Reading("cat", float(total), "{score}", answers.taken_at, received_at,
                        device_id=device_id)]
    return []


class QuestionnaireService:
    """Accept the questionnaires a patient fills in on the web pages."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.engine = engine
        self.clock = clock
        self.new_id = new_id

    def submit(self, patient_id: str, kind: str, answers: dict[str, Any]) -> Submission:
        """Validate and store one response now; raise InvalidAnswers listing every problem."""
        now = self.clock()
        body = {"msg_id": self.new_id(), "taken_at": events.instant(now),
                "questionnaire": kind, "answers": answers}
        [item] = parse_questionnaire_responses(json.dumps(body).encode(), now)
        if isinstance(item, Rejection):
            raise InvalidAnswers(list(item.errors))
        with Session(self.engine, expire_on_commit=False) as session:
            patient = session.get(Patient, patient_id)
            if patient is None:
                raise InvalidAnswers([f"patient {patient_id} is not known"])
            row = record_response(session, item, patient_id=patient_id, device_id=None,
                                  received_at=now, now=now, new_id=self.new_id)
            session.flush()
            teams = team_organizations(session, [patient_id]).get(patient_id, [])
            event = {"type": "observation", "rooms": events.rooms_for(patient_id, teams),
                     "data": events.observation_payload(row, patient)}
            session.commit()
        return Submission(kind, int(row.value or 0), row.id, event)


def _json(resource: dict[str, Any]) -> str:
    validate_resource(resource)
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
