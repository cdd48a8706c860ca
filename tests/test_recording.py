"""Every door runs the rules: the same answers raise the same alert through each of them.

Doors: the MQTT gateway (IngestService), the patient's own web form (QuestionnaireService),
telephone/paper entry (server/ingest/phone_entry.py) and POST /fhir/Observation
(server/ingest/manual_entry.py). Each stores, triages and alerts through server/ingest/recorder.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select
from telekol.server.ingest import manual_entry, phone_entry
from telekol.server.ingest.batch import IngestService
from telekol.server.ingest.self_report import QuestionnaireService
from telekol.server.models import Alert, User

from tests.test_alert_rules_ingest import answers, measure
from tests.test_ingest import NOW
from tests.test_questionnaire_payload import DIARY

WORSE = {"more_breathless": True, "more_sputum": True}


def nurse(engine) -> User:
    with Session(engine) as session:
        found = session.exec(select(User).where(User.username == "nurse.aalby")).one()
        session.expunge(found)
        return found


def the_alerts(engine, patient_id: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return sorted((a.rule, a.severity) for a in session.exec(
            select(Alert).where(Alert.patient_id == patient_id)))


def diary_by_mqtt(engine, demo) -> list[dict]:
    device = demo["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest(
        [answers(device, "d1", "copd-symptoms", NOW - timedelta(minutes=1), **WORSE)])
    return result.events


def diary_on_the_web(engine, demo) -> list[dict]:
    service = QuestionnaireService(engine, clock=lambda: NOW)
    return service.submit(demo["patients"][0]["id"], "copd-symptoms", {**DIARY, **WORSE}).events


def diary_by_telephone(engine, demo) -> list[dict]:
    with Session(engine) as session:
        entry = phone_entry.report_answers(
            session, nurse(engine), demo["patients"][0]["id"],
            {"questionnaire": "copd-symptoms", "answers": {**DIARY, **WORSE},
             "method": "telephone"}, now=NOW)
    return entry.events


@pytest.mark.parametrize("door", [diary_by_mqtt, diary_on_the_web, diary_by_telephone])
def test_a_diary_with_two_cardinal_symptoms_raises_a_red_alert_through_every_door(
        engine, demo, door) -> None:
    pushed = door(engine, demo)
    assert the_alerts(engine, demo["patients"][0]["id"]) == [("symptoms", "red")]
    [alert] = [e["data"] for e in pushed if e["type"] == "alert"]
    assert alert["severity"] == "red" and alert["rule"] == "symptoms"
    assert {e["type"] for e in pushed} == {"observation", "alert"}


def spo2_by_mqtt(engine, demo) -> list[dict]:
    device = demo["devices"][0]["device_id"]
    return IngestService(engine, clock=lambda: NOW).ingest(
        [measure(device, "m1", NOW - timedelta(minutes=1), spo2=85)]).events


def spo2_by_telephone(engine, demo) -> list[dict]:
    with Session(engine) as session:
        entry = phone_entry.report_reading(
            session, nurse(engine), demo["patients"][0]["id"],
            {"type": "spo2", "value": 85, "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
             "method": "telephone"}, now=NOW)
    return entry.events


def spo2_by_fhir(engine, demo) -> list[dict]:
    body = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
            "subject": {"reference": f"Patient/{demo['patients'][0]['id']}"},
            "effectiveDateTime": (NOW - timedelta(minutes=1)).isoformat(),
            "valueQuantity": {"value": 85, "unit": "%", "system": "http://unitsofmeasure.org",
                              "code": "%"}}
    with Session(engine) as session:
        _, pushed = manual_entry.enter_reading(session, nurse(engine), body, now=NOW)
    return pushed


@pytest.mark.parametrize("door", [spo2_by_mqtt, spo2_by_telephone, spo2_by_fhir])
def test_a_red_spo2_raises_the_same_threshold_alert_through_every_door(engine, demo,
                                                                     door) -> None:
    pushed = door(engine, demo)
    assert ("threshold:spo2", "red") in the_alerts(engine, demo["patients"][0]["id"])
    assert any(e["type"] == "alert" and e["data"]["rule"] == "threshold:spo2" for e in pushed)


def test_a_repeat_keeps_the_reading_that_set_the_severity_and_the_latest_one(engine,
                                                                           demo) -> None:
    device = demo["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    first, second = NOW - timedelta(minutes=30), NOW - timedelta(minutes=5)
    service.ingest([measure(device, "a", first, spo2=85)])
    IngestService(engine, clock=lambda: NOW + timedelta(minutes=1)).ingest(
        [measure(device, "b", second, spo2=90)])
    with Session(engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.rule == "threshold:spo2")).all()
    assert (alert.severity, alert.count) == ("red", 2)
    assert alert.severity_details["value"] == 85 and alert.details["value"] == 90
    assert alert.severity_at == first and alert.last_at == second
    assert "red limit" in alert.severity_reason and "yellow limit" in alert.reason


def test_a_worse_repeat_moves_why_the_alert_has_its_colour(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest(
        [measure(device, "a", NOW - timedelta(minutes=30), spo2=90)])
    IngestService(engine, clock=lambda: NOW).ingest(
        [measure(device, "b", NOW - timedelta(minutes=5), spo2=84)])
    with Session(engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.rule == "threshold:spo2")).all()
    assert alert.severity == "red" and alert.severity_details["value"] == 84


def test_a_hub_whose_clock_is_15_minutes_slow_raises_a_clock_alert(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    for hour in (2, 1, 0):
        received = NOW - timedelta(hours=hour)
        IngestService(engine, clock=lambda r=received: r).ingest(
            [measure(device, f"slow-{hour}", received - timedelta(minutes=15), received,
                     spo2=95, pulse=70)])
    with Session(engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.rule == "device:clock")).all()
    assert alert.severity == "blue" and alert.details["side"] == "behind"
    assert round(alert.details["offset_minutes"]) == -15


def test_a_hub_uploading_its_buffer_now_and_then_raises_no_clock_alert(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    for hour, lag in ((2, 40), (1, 3), (0, 25)):
        received = NOW - timedelta(hours=hour)
        IngestService(engine, clock=lambda r=received: r).ingest(
            [measure(device, f"buf-{hour}", received - timedelta(minutes=lag), received,
                     spo2=95, pulse=70)])
    assert ("device:clock", "blue") not in the_alerts(engine, demo["patients"][0]["id"])
