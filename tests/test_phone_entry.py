"""The non-digital route's service and page: entered data meets the same rules as device data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, func, select
from telekol.server.accounts.admin import add_user
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest import phone_entry
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Alert, AuditRecord, Observation, User
from telekol.server.web import create_app

from tests.test_web import log_in

NOW = datetime.now(UTC).replace(microsecond=0)


def user(engine, username: str) -> User:
    """Return a demo user."""
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).one()


def rules_fired(engine, patient_id: str) -> set[tuple[str, str]]:
    """Return the (rule, severity) of the patient's alerts."""
    with Session(engine) as session:
        return {(a.rule, a.severity) for a in session.exec(
            select(Alert).where(Alert.patient_id == patient_id))}


READINGS = [  # (reading code or type, value): each as a device and as a phone reading
    ("spo2", 86), ("spo2", 90), ("spo2", 95), ("pulse", 135), ("resp_rate", 26),
    ("temperature", 39.5),
]


@pytest.mark.parametrize(("code", "value"), READINGS)
def test_a_phone_reading_raises_the_same_alerts_as_the_same_reading_from_a_device(
        engine, demo, code: str, value: float) -> None:
    karen, poul = demo["patients"][0]["id"], demo["patients"][1]["id"]
    device = next(d["device_id"] for d in demo["devices"] if d["patient"] == poul)
    taken = NOW.isoformat()
    payload = json.dumps({"msg_id": "m1", "taken_at": taken,
                          "readings": [{"code": code, "value": value}]}).encode()
    IngestService(engine, clock=lambda: NOW).ingest([ParsedDelivery(
        "t", device, NOW, parse_measurements(payload, NOW))])
    with Session(engine) as session:
        phone_entry.report_reading(session, user(engine, "nurse.aalby"), karen, {
            "type": code, "value": value, "taken_at": taken, "method": "telephone"}, now=NOW)
    assert rules_fired(engine, karen) == rules_fired(engine, poul)


def test_device_rules_do_not_judge_a_reading_reported_hours_later(engine, demo) -> None:
    karen = demo["patients"][0]["id"]
    taken = (NOW - timedelta(hours=5)).isoformat()
    with Session(engine) as session:
        entry = phone_entry.report_reading(session, user(engine, "nurse.aalby"), karen, {
            "type": "spo2", "value": 86, "taken_at": taken, "method": "telephone"}, now=NOW)
    assert [a["rule"] for a in entry.alerts] == ["threshold:spo2"]
    assert "late" not in entry.alerts[0]["reason"]
    assert rules_fired(engine, karen) == {("threshold:spo2", "red")}


def test_a_second_red_reading_updates_the_open_alert_instead_of_opening_another(
        engine, demo) -> None:
    karen = demo["patients"][0]["id"]
    nurse = user(engine, "nurse.aalby")
    with Session(engine) as session:
        first = phone_entry.report_reading(session, nurse, karen, {
            "type": "spo2", "value": 86, "taken_at": NOW.isoformat(), "method": "paper"},
            now=NOW)
        second = phone_entry.report_reading(session, nurse, karen, {
            "type": "spo2", "value": 84, "taken_at": NOW.isoformat(), "method": "paper"},
            now=NOW)
    assert first.alerts[0]["id"] == second.alerts[0]["id"]
    assert second.alerts[0]["count"] == 2 and "84" in second.alerts[0]["reason"]


@pytest.mark.parametrize("report", [phone_entry.report_reading, phone_entry.report_answers])
def test_a_parallel_request_with_the_same_key_gets_the_first_entry(
        engine, demo, monkeypatch, report) -> None:
    karen = demo["patients"][0]["id"]
    nurse = user(engine, "nurse.aalby")
    body = ({"type": "spo2", "value": 86, "taken_at": NOW.isoformat(), "method": "telephone"}
            if report is phone_entry.report_reading else
            {"questionnaire": "copd-symptoms", "method": "paper", "answers": {
                "more_breathless": True, "more_sputum": False, "sputum_colour_changed": False,
                "more_cough": False}})
    with Session(engine) as first:
        stored = report(first, nurse, karen, body, key="same", now=NOW).observation.id
    real = phone_entry.existing_entry
    calls = []

    def not_yet_committed(session, msg_id):  # the other request's check came first
        calls.append(msg_id)
        return None if len(calls) == 1 else real(session, msg_id)

    monkeypatch.setattr(phone_entry, "existing_entry", not_yet_committed)
    with Session(engine) as second:
        again = report(second, nurse, karen, body, key="same", now=NOW)
        assert len(calls) == 2 and again.created is False
        assert again.observation.id == stored
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Observation).where(
            Observation.device_id == "manual")).one() == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "bad\nkey"])
def test_an_unusable_key_is_refused(engine, demo, key: str) -> None:
    with Session(engine) as session, pytest.raises(phone_entry.InvalidReport):
        phone_entry.report_reading(session, user(engine, "nurse.aalby"),
                                   demo["patients"][0]["id"], {}, key=key, now=NOW)


def test_a_secretary_may_not_enter_a_reading_through_fhir_either(engine, demo,
                                                                 settings) -> None:
    app = _app(engine, demo, settings)
    client = app.test_client()
    token = client.post("/api/auth/token", json={
        "username": "secretary.aalby", "password": DEMO_PASSWORD}).get_json()["access_token"]
    body = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
            "subject": {"reference": f"Patient/{demo['patients'][0]['id']}"},
            "effectiveDateTime": NOW.isoformat(),
            "valueQuantity": {"value": 90, "system": "http://unitsofmeasure.org", "code": "%"}}
    response = client.post("/fhir/Observation", data=json.dumps(body), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert response.status_code == 403


# --- the page -------------------------------------------------------------------------------


def _app(engine, demo, settings):
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    with Session(engine) as session:
        add_user(session, "secretary.aalby", "Sekretær Anne Vang", "secretary", "muni-aalby",
                 password=DEMO_PASSWORD)
        session.commit()
    return app


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on the demo database (with an Aalby secretary), without the bridge."""
    return _app(engine, demo, settings)


@pytest.fixture
def page(app):
    """Return a browser-like client signed in as the Aalby nurse, and Karen's page path."""
    client = app.test_client()
    log_in(client, "nurse.aalby")
    return client, f"/patients/{app.config['fixture']['patients'][0]['id']}/phone"


def form_of(html: str, action_end: str) -> dict[str, str]:
    """Return the hidden fields of the form whose action ends with `action_end`."""
    found = re.search(f'action="[^"]*{re.escape(action_end)}"', html)
    assert found, f"no form posting to {action_end}"
    block = html[found.start():html.index("</form>", found.start())]
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', block))


def reading_form(html: str, **fields: str) -> dict[str, str]:
    """Return the reading form as a browser would send it (SpO2 86 by telephone, now)."""
    now = datetime.now(UTC).astimezone().strftime("%Y-%m-%dT%H:%M")
    return {**form_of(html, "/phone/reading"), "type": "spo2", "value": "86",
            "taken_at": now, "method": "telephone", "note": "", **fields}


def result_of(html: str) -> dict[str, str]:
    """Return the data attributes of the result box."""
    match = re.search(r'<section[^>]*id="entry-result"([^>]*)>', html, re.S)
    assert match, "no result shown"
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', match.group(1)))


def manual_count(app) -> int:
    """Return how many entered Observations are stored."""
    with Session(app.config["engine"]) as session:
        return session.exec(select(func.count()).select_from(Observation).where(
            Observation.device_id == "manual")).one()


@pytest.mark.parametrize(("query", "items"), [("", 8), ("?questionnaire=cat", 8),
                                              ("?questionnaire=copd-symptoms", 4)])
def test_the_page_shows_a_reading_form_and_the_chosen_questionnaire(page, query: str,
                                                                    items: int) -> None:
    client, path = page
    html = client.get(path + query).get_data(as_text=True)
    assert 'id="reading-form"' in html and 'name="taken_at"' in html
    assert "SpO2 (%)" in html and 'value="in-person"' in html
    questionnaire = html[html.index('id="questionnaire-form"'):]
    assert questionnaire.count('<fieldset class="question">') == items + 1  # + how obtained


@pytest.mark.parametrize(("username", "status"), [
    ("nurse.aalby", 200), ("gp.torvet", 200), ("secretary.aalby", 403),
    ("patient.karen", 403), ("nurse.boestrup", 404), ("admin", 404)])
def test_only_clinicians_on_the_team_get_the_page(app, username: str, status: int) -> None:
    client = app.test_client()
    log_in(client, username)
    karen = app.config["fixture"]["patients"][0]["id"]
    assert client.get(f"/patients/{karen}/phone").status_code == status


def test_a_reading_entered_on_the_page_shows_its_colour_and_the_alert(page, app) -> None:
    client, path = page
    html = client.get(path).get_data(as_text=True)
    response = client.post(path + "/reading", data=reading_form(html))
    assert response.status_code == 200
    shown = response.get_data(as_text=True)
    assert result_of(shown) == {"kind": "reading", "severity": "red", "alerts": "1",
                                "created": "true"}
    assert "SpO2 86 % er under den røde grænse 88 %" in shown  # in the page's language
    assert manual_count(app) == 1


def test_the_same_form_sent_twice_is_saved_once(page, app) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True))
    client.post(path + "/reading", data=data)
    again = client.post(path + "/reading", data=data).get_data(as_text=True)
    assert result_of(again)["created"] == "false" and result_of(again)["severity"] == "red"
    assert manual_count(app) == 1
    fresh = form_of(again, "/phone/reading")["entry_id"]
    assert fresh != data["entry_id"]  # the next entry gets a new key


def test_the_time_taken_is_read_as_danish_local_time(page) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True), taken_at="2025-01-15T08:10")
    client.post(path + "/reading", data=data)
    bundle = client.get(f"/fhir/Observation?patient={path.split('/')[2]}").get_json()
    assert [e["resource"]["effectiveDateTime"] for e in bundle["entry"]] == [
        "2025-01-15T08:10:00+01:00"]


def test_a_blood_pressure_is_typed_as_systolic_slash_diastolic(page) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True), type="bp", value="142/88")
    shown = client.post(path + "/reading", data=data).get_data(as_text=True)
    assert "142/88 mmHg" in shown


@pytest.mark.parametrize(("value", "reason"), [("abc", "value must be a number"),
                                               ("101", "outside the plausible range")])
def test_a_refused_reading_keeps_what_was_typed_and_its_key(page, app, value: str,
                                                            reason: str) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True), value=value,
                        note="ringede kl. 9")
    response = client.post(path + "/reading", data=data)
    assert response.status_code == 422
    shown = response.get_data(as_text=True)
    assert 'id="entry-errors"' in shown and reason in shown
    assert f'value="{value}"' in shown and "ringede kl. 9" in shown
    assert form_of(shown, "/phone/reading")["entry_id"] == data["entry_id"]
    assert manual_count(app) == 0


@pytest.mark.parametrize(("kind", "answers", "score"), [
    ("cat", dict.fromkeys(("cough", "phlegm", "chest_tightness", "breathlessness",
                           "activities", "confidence", "sleep", "energy"), "3"), "24"),
    ("copd-symptoms", {"more_breathless": "yes", "more_sputum": "no",
                       "sputum_colour_changed": "no", "more_cough": "yes"}, "2"),
])
def test_a_questionnaire_entered_on_the_page_shows_the_score(page, kind: str,
                                                             answers: dict, score: str) -> None:
    client, path = page
    html = client.get(f"{path}?questionnaire={kind}").get_data(as_text=True)
    action = f"/phone/questionnaire/{kind}"
    now = datetime.now(UTC).astimezone().strftime("%Y-%m-%dT%H:%M")
    data = {**form_of(html, action), **answers, "authored": now, "method": "telephone"}
    response = client.post(path + f"/questionnaire/{kind}", data=data)
    assert response.status_code == 200
    assert result_of(response.get_data(as_text=True))["score"] == score


def test_an_unanswered_questionnaire_is_refused_and_saves_nothing(page, app) -> None:
    client, path = page
    html = client.get(path).get_data(as_text=True)
    data = {**form_of(html, "/phone/questionnaire/cat"), "cough": "2", "method": "paper",
            "authored": "2025-01-15T08:10"}
    response = client.post(path + "/questionnaire/cat", data=data)
    assert response.status_code == 422
    assert "answers.phlegm is required" in response.get_data(as_text=True)
    assert manual_count(app) == 0


def test_the_page_and_each_entry_are_in_the_audit_log(page, app) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True))
    client.post(path + "/reading", data=data)
    karen = path.split("/")[2]
    with Session(app.config["engine"]) as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.patient_id == karen)).all()
    seen = {(r.action, r.resource.split("/")[0], r.door) for r in rows}
    assert {("read", "Patient", "ui"), ("create", "Observation", "ui")} <= seen


def test_a_page_post_without_the_csrf_token_is_refused(page, app) -> None:
    client, path = page
    data = reading_form(client.get(path).get_data(as_text=True))
    del data["csrf_token"]
    assert client.post(path + "/reading", data=data).status_code == 400
    assert manual_count(app) == 0

