"""Parsing and validating MQTT questionnaire-responses payloads (contract §3)."""

import json
from datetime import UTC, datetime

import pytest
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server.device_messages.envelope import MAX_OBJECTS, MAX_PAYLOAD_BYTES
from telekol.server.device_messages.questionnaire_responses import (
    QuestionnaireAnswers,
    Rejection,
    parse_questionnaire_responses,
)

RECEIVED = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
CAT = {"cough": 1, "phlegm": 2, "chest_tightness": 0, "breathlessness": 4, "activities": 3,
       "confidence": 5, "sleep": 2, "energy": 1}
DIARY = {"more_breathless": True, "more_sputum": False, "sputum_colour_changed": True,
         "more_cough": False}
_MISSING = object()


def response(kind="cat", values=None, **changes):
    """Return a valid response object with some fields changed or removed."""
    obj = {"msg_id": "HUB-7-q-000001", "taken_at": "2026-11-25T07:31:00+01:00",
           "questionnaire": kind,
           "answers": dict(values if values is not None else CAT if kind == "cat" else DIARY)}
    obj.update(changes)
    return {key: value for key, value in obj.items() if value is not _MISSING}


def parse(document):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_questionnaire_responses(raw, RECEIVED)


def errors_of(document) -> str:
    [result] = parse(document)
    assert isinstance(result, Rejection), result
    return " | ".join(result.errors)


def test_a_cat_response_keeps_every_answer_in_questionnaire_order() -> None:
    [result] = parse(response(values=dict(reversed(CAT.items()))))
    assert isinstance(result, QuestionnaireAnswers)
    assert result.questionnaire == "cat" and result.msg_id == "HUB-7-q-000001"
    assert result.answers == tuple(CAT.items())
    assert result.taken_at_text == "2026-11-25T07:31:00+01:00"


def test_a_symptom_diary_keeps_booleans() -> None:
    [result] = parse(response("copd-symptoms"))
    assert isinstance(result, QuestionnaireAnswers)
    assert result.answers == tuple(DIARY.items())


def test_an_array_yields_one_result_per_object_in_order() -> None:
    results = parse([response(msg_id="a"), response("nope", msg_id="b"),
                     response("copd-symptoms", msg_id="c")])
    assert [type(r).__name__ for r in results] == ["QuestionnaireAnswers", "Rejection",
                                                   "QuestionnaireAnswers"]
    assert [r.msg_id for r in results] == ["a", "b", "c"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"cough": 6}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": -1}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": 2.5}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": 2.0}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": True}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": "3"}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": None}, "answers.cough must be an integer from 0 to 5"),
    ({"cough": 10**30}, "answers.cough must be an integer"),
    ({"sleep": _MISSING}, "answers.sleep is required"),
    ({"mood": 3}, "answers holds mood, not questions of cat"),
])
def test_a_bad_cat_answer_is_rejected_naming_the_item(change, reason) -> None:
    answers = {**CAT, **change}
    answers = {k: v for k, v in answers.items() if v is not _MISSING}
    assert reason in errors_of(response(values=answers))


@pytest.mark.parametrize(("change", "reason"), [
    ({"more_cough": 1}, "answers.more_cough must be true or false"),
    ({"more_cough": "yes"}, "answers.more_cough must be true or false"),
    ({"more_cough": None}, "answers.more_cough must be true or false"),
    ({"more_sputum": _MISSING}, "answers.more_sputum is required"),
    ({"cough": 1}, "answers holds cough, not questions of copd-symptoms"),
])
def test_a_bad_diary_answer_is_rejected_naming_the_item(change, reason) -> None:
    answers = {k: v for k, v in {**DIARY, **change}.items() if v is not _MISSING}
    assert reason in errors_of(response("copd-symptoms", values=answers))


@pytest.mark.parametrize(("changes", "reason"), [
    ({"questionnaire": _MISSING}, "questionnaire is required"),
    ({"questionnaire": "CAT"}, "questionnaire must be one of cat, copd-symptoms"),
    ({"questionnaire": ["cat"]}, "questionnaire must be one of cat, copd-symptoms"),
    ({"questionnaire": {"__class__": 1}}, "questionnaire must be one of"),
    ({"answers": _MISSING}, "answers is required"),
    ({"answers": [1, 2, 3]}, "answers must be an object"),
    ({"answers": None}, "answers must be an object"),
    ({"msg_id": _MISSING}, "msg_id is required"),
    ({"msg_id": "a b"}, "msg_id must be 1 to 64 characters"),
    ({"msg_id": "x" * 65}, "msg_id must be 1 to 64 characters"),
    ({"taken_at": _MISSING}, "taken_at is required"),
    ({"taken_at": "2026-11-25T07:31:00"}, "must be an RFC 3339 date-time"),
    ({"taken_at": "2026-11-25T08:10:00Z"}, "is in the future"),
    ({"taken_at": "1970-01-01T00:00:00Z"}, "before 2000-01-01"),
])
def test_the_envelope_rules_are_those_of_measurements(changes, reason) -> None:
    assert reason in errors_of(response(**changes))


def test_every_problem_is_reported_at_once() -> None:
    reasons = errors_of(response(msg_id="", taken_at="yesterday",
                                 values={**CAT, "cough": 9, "sleep": "x"}))
    for part in ("msg_id", "taken_at", "answers.cough", "answers.sleep"):
        assert part in reasons


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "not valid JSON"),
    (b"\xff\xfe", "not valid UTF-8"),
    (b'{"msg_id": NaN}', "NaN or Infinity"),
    (b"[]", "empty array; send at least one questionnaire response"),
    (b"42", "must be a JSON object or an array"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), "at most 262144 are accepted"),
    (json.dumps([{}] * (MAX_OBJECTS + 1)).encode(), "at most 500 are accepted"),
])
def test_a_hostile_payload_is_one_rejection_never_an_exception(raw, reason) -> None:
    [result] = parse(raw)
    assert isinstance(result, Rejection) and result.msg_id is None
    assert reason in " ".join(result.errors)


def test_thousands_of_unknown_answers_give_one_short_reason() -> None:
    answers = {**CAT, **{f"k{i}": 1 for i in range(5000)}}
    [result] = parse(response(values=answers))
    assert isinstance(result, Rejection)
    assert len(result.errors) == 1 and "and 4997 more" in result.errors[0]


def test_a_control_character_msg_id_is_not_echoed() -> None:
    [result] = parse(response(msg_id="a\u0000b", values={}))
    assert isinstance(result, Rejection) and result.msg_id is None


def test_both_questionnaires_are_catalogued_with_the_documented_items() -> None:
    assert [i.link_id for i in QUESTIONNAIRES["cat"].items] == list(CAT)
    assert [i.link_id for i in QUESTIONNAIRES["copd-symptoms"].items] == list(DIARY)
