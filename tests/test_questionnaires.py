"""Questionnaire responses: FHIR mapping, storage exactly once, the patient's form, end to end."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select
from telekol.fhir.questionnaire import (
    CAT_IMPACT_SYSTEM,
    QUESTIONNAIRES,
    SCORES_SYSTEM,
    cat_impact,
    questionnaire_resource,
)
from telekol.fhir.validation import validate_resource
from telekol.server.device_messages.questionnaire_responses import parse_questionnaire_responses
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.ingest.questionnaires import WEB_SOURCE
from telekol.server.ingest.self_report import InvalidAnswers, QuestionnaireService
from telekol.server.models import InboundMessage, Observation, QuarantinedMessage, StoredResource

from tests import test_ingest
from tests.stack_fixtures import Stack, StatusListener
from tests.test_ingest import NOW, count
from tests.test_pipeline import fhir_get, monitoring_user
from tests.test_questionnaire_payload import CAT, DIARY
from tests.test_web import app, log_in  # noqa: F401  (the `app` fixture)


def delivery(device_id: str, *objects: dict) -> ParsedDelivery:
    """Parse a questionnaire-responses payload as the gateway would."""
    payload = json.dumps(objects[0] if len(objects) == 1 else list(objects)).encode()
    return ParsedDelivery(f"telekol/v1/devices/{device_id}/questionnaire-responses", device_id,
                          NOW, parse_questionnaire_responses(payload, NOW), payload)


def response(kind: str = "cat", msg_id: str = "q1", **answers: object) -> dict:
    """Return one questionnaire response object taken a minute ago."""
    base = CAT if kind == "cat" else DIARY
    return {"msg_id": msg_id, "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
            "questionnaire": kind, "answers": {**base, **answers}}


def stored(engine, model) -> list:
    """Return every row of a table."""
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


@pytest.mark.parametrize(("total", "band"), [
    (0, "low"), (9, "low"), (10, "medium"), (20, "medium"), (21, "high"), (30, "high"),
    (31, "very-high"), (40, "very-high"),
])
def test_a_cat_total_falls_in_its_impact_band(total: int, band: str) -> None:
    assert cat_impact(total)[0] == band


@pytest.mark.parametrize("kind", sorted(QUESTIONNAIRES))
def test_each_questionnaire_definition_is_a_valid_r4b_questionnaire(kind: str) -> None:
    resource = validate_resource(questionnaire_resource(kind))
    assert resource["url"] == f"https://telekol.dk/fhir/Questionnaire/{kind}"
    assert [i["linkId"] for i in resource["item"]] == [
        i.link_id for i in QUESTIONNAIRES[kind].items]
    if kind == "cat":
        assert resource["item"][0]["answerOption"] == [{"valueInteger": n} for n in range(6)]


def test_a_cat_response_becomes_a_response_and_a_scored_observation(engine, demo) -> None:
    device, patient = demo["devices"][0]["device_id"], demo["devices"][0]["patient"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, response())])
    assert result.statuses == [(device, {"msg_id": "q1", "result": "accepted", "errors": []})]
    [row] = stored(engine, Observation)
    observation = validate_resource(json.loads(row.resource))
    assert (row.type_code, row.value, row.patient_id) == ("cat", 18.0, patient)
    assert observation["code"]["coding"][0] == {
        "system": SCORES_SYSTEM, "code": "cat-total",
        "display": "COPD Assessment Test (CAT) total score"}
    assert observation["category"][0]["coding"][0]["code"] == "survey"
    assert observation["valueInteger"] == 18
    assert observation["interpretation"][0]["coding"][0] == {
        "system": CAT_IMPACT_SYSTEM, "code": "medium", "display": "Medium impact"}
    assert observation["device"] == {"reference": f"Device/{device}"}
    [kept] = stored(engine, StoredResource)
    qr = validate_resource(json.loads(kept.resource))
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
    assert (kept.resource_type, kept.patient_id) == ("QuestionnaireResponse", patient)
    assert qr["questionnaire"] == "https://telekol.dk/fhir/Questionnaire/cat"
    assert qr["status"] == "completed" and qr["authored"] == response()["taken_at"]
    assert qr["author"] == {"reference": f"Device/{device}"}
    assert qr["identifier"]["value"] == f"{device}-q1"
    assert qr["item"][0] == {"linkId": "cough", "answer": [{"valueInteger": 1}]}
    [event] = result.events
    assert event["type"] == "observation" and event["data"]["value"] == 18
    assert event["data"]["code"] == "cat" and f"patient:{patient}" in event["rooms"]


def test_a_symptom_diary_counts_the_symptoms_answered_yes(engine, demo) -> None:
    device = demo["devices"][1]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, response(
        "copd-symptoms", more_cough=True))])
    [row] = stored(engine, Observation)
    observation = json.loads(row.resource)
    assert (row.type_code, observation["valueInteger"]) == ("symptoms", 3)
    assert observation["code"]["coding"][0]["code"] == "copd-symptom-count"
    assert "interpretation" not in observation
    [kept] = stored(engine, StoredResource)
    items = json.loads(kept.resource)["item"]
    answers = {i["linkId"]: i["answer"][0]["valueBoolean"] for i in items}
    assert answers == {**DIARY, "more_cough": True}


def test_a_repeated_msg_id_is_answered_duplicate_and_stored_once(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    service.ingest([delivery(device, response())])
    again = service.ingest([delivery(device, response(), response(msg_id="q2"))])
    assert [s["result"] for _, s in again.statuses] == ["duplicate", "accepted"]
    assert count(engine, Observation) == 2 and count(engine, StoredResource) == 2
    assert count(engine, InboundMessage) == 2


def test_a_measurement_msg_id_and_a_response_msg_id_share_one_ledger(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    service.ingest([test_ingest.delivery(device, test_ingest.reading("same", 95))])
    result = service.ingest([delivery(device, response(msg_id="same"))])
    assert result.statuses[0][1]["result"] == "duplicate"
    assert count(engine, StoredResource) == 0


def test_an_invalid_response_is_quarantined_and_rejected_with_reasons(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, response(
        cough=7))])
    [(_, body)] = result.statuses
    assert body["result"] == "rejected"
    assert body["errors"] == ["answers.cough must be an integer from 0 to 5"]
    [kept] = stored(engine, QuarantinedMessage)
    assert kept.msg_id == "q1" and kept.topic.endswith("/questionnaire-responses")
    assert count(engine, Observation) == 0


def test_a_web_submission_is_stored_with_the_patient_as_author(engine, demo) -> None:
    patient = demo["patients"][0]["id"]
    service = QuestionnaireService(engine, clock=lambda: NOW)
    submission = service.submit(patient, "cat", {**CAT, "energy": 5})
    assert submission.total == 22
    [row] = stored(engine, Observation)
    assert row.device_id == WEB_SOURCE and "device" not in json.loads(row.resource)
    [kept] = stored(engine, StoredResource)
    assert json.loads(kept.resource)["author"] == {"reference": f"Patient/{patient}"}
    [ledger] = stored(engine, InboundMessage)
    assert (ledger.device_id, ledger.patient_id) == (WEB_SOURCE, patient)
    [event] = submission.events
    assert event["data"]["value"] == 22


def test_a_web_submission_with_a_missing_answer_stores_nothing(engine, demo) -> None:
    answers = {k: v for k, v in CAT.items() if k != "sleep"}
    with pytest.raises(InvalidAnswers, match=r"answers\.sleep is required"):
        QuestionnaireService(engine).submit(demo["patients"][0]["id"], "cat", answers)
    assert count(engine, Observation) == 0 and count(engine, InboundMessage) == 0


def _form(client, kind: str) -> tuple[str, str]:
    from tests.test_web import csrf_token

    page = client.get(f"/questionnaire/{kind}?lang=da").get_data(as_text=True)
    return page, csrf_token(page)


def test_the_patient_fills_in_the_cat_in_danish_and_sees_the_total(app) -> None:  # noqa: F811
    client = app.test_client()
    assert log_in(client, "patient.karen").status_code == 302
    page, token = _form(client, "cat")
    assert "Hvor meget hoster du?" in page and page.count('type="radio"') == 48
    answers = {key: str(value) for key, value in CAT.items()}
    done = client.post("/questionnaire/cat?lang=da", data={**answers, "csrf_token": token})
    assert done.status_code == 200
    assert "Din CAT-score er 18 ud af 40 (Middel påvirkning)." in done.get_data(as_text=True)


def test_the_patient_fills_in_the_symptom_diary_in_english(app) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client, "patient.karen")
    _, token = _form(client, "copd-symptoms")
    answers = {key: "yes" if value else "no" for key, value in DIARY.items()}
    done = client.post("/questionnaire/copd-symptoms?lang=en",
                       data={**answers, "csrf_token": token}).get_data(as_text=True)
    assert "You have 2 of 4 symptoms worse than usual." in done


@pytest.mark.parametrize("form", [{"cough": "9"}, {"cough": "<script>"}, {}])
def test_an_incomplete_form_is_shown_again_and_nothing_is_stored(app, engine,  # noqa: F811
                                                                 form) -> None:
    client = app.test_client()
    log_in(client, "patient.karen")
    _, token = _form(client, "cat")
    answers = {**{k: str(v) for k, v in CAT.items()}, **form}
    if not form:
        answers.pop("energy")
    response = client.post("/questionnaire/cat?lang=en", data={**answers, "csrf_token": token})
    assert response.status_code == 400
    assert "Please answer every question." in response.get_data(as_text=True)
    assert count(engine, Observation) == 0


def test_the_form_refuses_a_post_without_csrf_token(app) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client, "patient.karen")
    assert client.post("/questionnaire/cat", data=dict(CAT)).status_code == 400


@pytest.mark.parametrize(("username", "path"), [
    ("nurse.aalby", "/questionnaire/cat"), ("admin", "/questionnaire/copd-symptoms"),
    ("patient.karen", "/questionnaire/mood"),
])
def test_only_patients_have_questionnaires(app, username: str, path: str) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client, username)
    assert client.get(path).status_code == 404


@pytest.mark.integration
def test_a_cat_response_over_mqtt_is_accepted_and_readable_over_fhir(stack: Stack) -> None:
    device = stack.device(5)
    token = stack.token(monitoring_user(stack, device["patient"]))
    status = StatusListener(stack, device)
    body = {"msg_id": f"cat-{uuid.uuid4().hex[:12]}", "questionnaire": "cat", "answers": CAT,
            "taken_at": datetime.now(UTC).astimezone().isoformat(timespec="seconds")}
    topic = f"telekol/v1/devices/{device['device_id']}/questionnaire-responses"
    try:
        result = stack.mosquitto_pub(device, json.dumps(body), topic=topic)
        assert result.returncode == 0, result.stderr
        assert status.wait_for(body["msg_id"]) == {
            "msg_id": body["msg_id"], "result": "accepted", "errors": []}
    finally:
        status.close()
    bundle = fhir_get(stack, "Observation", token, patient=device["patient"],
                      _count="1000").json()
    scores = [e["resource"] for e in bundle["entry"]
              if e["resource"]["code"]["coding"][0]["code"] == "cat-total"]
    assert [s["valueInteger"] for s in scores] == [18]
    assert scores[0]["effectiveDateTime"] == body["taken_at"]
