"""Parse an MQTT questionnaire-responses payload (contract §3) into frozen values.

Pure, never raising; the envelope (size, JSON, array, msg_id, taken_at) is the one
measurements use, so both kinds of message follow exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telekol.fhir.questionnaire import QUESTIONNAIRES, Answers, check_answers
from telekol.server.device_messages.envelope import Rejection, check_envelope, echo, parse_payload

__all__ = ["QuestionnaireAnswers", "Rejection", "parse_questionnaire_responses"]


@dataclass(frozen=True)
class QuestionnaireAnswers:
    """One valid questionnaire response: every item answered, in questionnaire order."""

    msg_id: str
    taken_at: datetime
    taken_at_text: str
    questionnaire: str  # a key of fhir.questionnaire.QUESTIONNAIRES
    answers: Answers
    raw: str


def parse_questionnaire_responses(
        raw: bytes, received_at: datetime) -> list[QuestionnaireAnswers | Rejection]:
    """Parse a payload into one QuestionnaireAnswers or Rejection per object, never raising."""
    return parse_payload(raw, received_at, _parse_object, "questionnaire response")


def _parse_object(obj: dict[str, Any], received_at: datetime,
                  raw: str) -> QuestionnaireAnswers | Rejection:
    errors: list[str] = []
    envelope = check_envelope(obj, received_at, errors)
    kind = obj.get("questionnaire")
    answers: Answers = ()
    if "questionnaire" not in obj:
        errors.append("questionnaire is required")
    elif not isinstance(kind, str) or kind not in QUESTIONNAIRES:
        errors.append(f"questionnaire must be one of {', '.join(sorted(QUESTIONNAIRES))}")
    elif "answers" not in obj:
        errors.append("answers is required")
    else:
        answers = check_answers(kind, obj["answers"], errors)
    if errors or envelope is None or not isinstance(kind, str):
        return Rejection(echo(obj.get("msg_id")), tuple(errors), raw)
    return QuestionnaireAnswers(envelope.msg_id, envelope.taken_at, envelope.taken_at_text, kind,
                                answers, raw)
