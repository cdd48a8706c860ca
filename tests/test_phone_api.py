"""The JSON door of the non-digital route: readings and answers a patient gave by telephone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, func, select
from telekol.server.accounts.admin import add_user
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import Alert, AuditRecord, Observation, StoredResource
from telekol.server.web import create_app

KAREN, POUL, ELSE = 0, 1, 7  # fixture patient indexes (Else: no sharing consent)
CAT = {"cough": 3, "phlegm": 3, "chest_tightness": 2, "breathlessness": 4, "activities": 3,
       "confidence": 2, "sleep": 3, "energy": 3}  # 23


class FakeBridge:
    """Records what would go to the broker."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Keep the batch."""
        self.batches.append(batch)


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on the demo database whose live bridge is a recording fake."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.extensions["telekol"].bridge = FakeBridge()
    app.config.update(fixture=demo, engine=engine)
    with Session(engine) as session:
        add_user(session, "secretary.aalby", "Sekretær Anne Vang", "secretary", "muni-aalby",
                 password=DEMO_PASSWORD)
        session.commit()
    return app


class Api:
    """A bearer-token client of /api."""

    def __init__(self, app, username: str = "nurse.aalby") -> None:
        self.app = app
        self.client = app.test_client()
        token = self.client.post("/api/auth/token", json={
            "username": username, "password": DEMO_PASSWORD}).get_json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def patient(self, index: int) -> str:
        """Return the id of the fixture's patient number `index`."""
        return self.app.config["fixture"]["patients"][index]["id"]

    def reading(self, index: int = KAREN, key: str | None = None, **body: Any):
        """POST a reading for a patient."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        return self.client.post(f"/api/patients/{self.patient(index)}/readings",
                                json=reading_body(**body), headers=headers)

    def answers(self, index: int = KAREN, key: str | None = None, **body: Any):
        """POST questionnaire answers for a patient."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        full = {"questionnaire": "cat", "answers": CAT, "method": "telephone", **body}
        return self.client.post(f"/api/patients/{self.patient(index)}/questionnaire-responses",
                                json={k: v for k, v in full.items() if v is not None},
                                headers=headers)

    def fhir(self, path: str) -> dict[str, Any]:
        """GET a /fhir resource or search."""
        return self.client.get(f"/fhir/{path}", headers=self.headers).get_json()


def reading_body(**changes: Any) -> dict[str, Any]:
    """Return a telephone SpO2 reading of 86 % taken ten minutes ago, with `changes`."""
    taken = (datetime.now(UTC) - timedelta(minutes=10)).isoformat(timespec="seconds")
    body = {"type": "spo2", "value": 86, "unit": "%", "taken_at": taken, "method": "telephone",
            **changes}
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def api(app) -> Api:
    """Return a client signed in as the Aalby nurse."""
    return Api(app)


def count(app, model: Any, *where: Any) -> int:
    """Return how many rows of `model` match."""
    with Session(app.config["engine"]) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def test_a_telephone_spo2_of_86_is_stored_red_and_raises_a_red_alert(api: Api) -> None:
    response = api.reading(value=86)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["created"], body["kind"], body["severity"]) == (True, "reading", "red")
    stored = api.fhir(f"Observation/{body['observation']['id']}")
    assert stored == body["observation"]
    assert stored["interpretation"][0]["coding"][0]["code"] == "LL"
    assert stored["valueQuantity"]["value"] == 86 and "device" not in stored
    [alert] = body["alerts"]
    assert alert["severity"] == "red" and "SpO2 86 %" in alert["reason"]
    assert alert["observation"] == stored["id"]


@pytest.mark.parametrize(("method", "text"), [("telephone", "verbal report by telephone"),
                                               ("paper", "transcribed from paper"),
                                               ("in-person", "reported in person")])
def test_the_provenance_names_the_nurse_her_organisation_the_patient_and_how(
        api: Api, method: str, text: str) -> None:
    stored = api.reading(method=method, value=95).get_json()["observation"]
    bundle = api.fhir(f"Provenance?target=Observation/{stored['id']}")
    assert bundle["total"] == 1
    provenance = bundle["entry"][0]["resource"]
    enterer, informant = provenance["agent"]
    assert enterer["type"]["coding"][0]["code"] == "enterer"
    assert enterer["who"]["reference"].startswith("Practitioner/")
    assert enterer["onBehalfOf"] == {"reference": "Organization/muni-aalby"}
    assert informant["who"] == {"reference": f"Patient/{api.patient(KAREN)}"}
    assert provenance["entity"][0]["role"] == "source"
    assert {"system": "https://telekol.dk/fhir/CodeSystem/entry-method", "code": method,
            "display": text} in provenance["activity"]["coding"]


def test_a_note_is_kept_on_the_observation_with_its_author(api: Api) -> None:
    stored = api.reading(value=93, note="Målt af datteren").get_json()["observation"]
    assert stored["note"][0]["text"] == "Målt af datteren"
    assert stored["note"][0]["authorReference"]["reference"].startswith("Practitioner/")


@pytest.mark.parametrize(("body", "field", "expected"), [
    ({"type": "pulse", "value": 88, "unit": "bpm"}, "valueQuantity", 88),
    ({"type": "weight", "value": 176, "unit": "lb"}, "valueQuantity", 79.83),
    ({"type": "temperature", "value": 100.4, "unit": "[degF]"}, "valueQuantity", 38),
    ({"type": "fev1", "value": 1150, "unit": "mL"}, "valueQuantity", 1.15),
    ({"type": "spo2", "value": 91, "unit": None}, "valueQuantity", 91),
    ({"type": "bp", "value": {"systolic": 18, "diastolic": 10.7}, "unit": "kPa"}, "component",
     [135, 80.3]),
])
def test_units_are_converted_like_a_devices(api: Api, body: dict, field: str,
                                            expected: Any) -> None:
    response = api.reading(**body)
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()["observation"]
    if field == "component":
        assert [c["valueQuantity"]["value"] for c in stored["component"]] == expected
    else:
        assert stored["valueQuantity"]["value"] == expected


@pytest.mark.parametrize(("change", "reason"), [
    ({"value": 101}, "outside the plausible range"),
    ({"value": 49}, "outside the plausible range"),
    ({"value": "86"}, "value must be a number"),
    ({"unit": "kg"}, "unit"),
    ({"type": "glucose"}, "type must be one of"),
    ({"method": "fax"}, "method must be one of"),
    ({"method": None}, "method must be one of"),
    ({"taken_at": "2099-01-01T00:00:00Z"}, "future"),
    ({"taken_at": "2026-11-25T08:00:00"}, "RFC 3339"),
    ({"taken_at": None}, "RFC 3339"),
    ({"type": "bp", "value": {"systolic": 140}}, "systolic"),
    ({"type": "bp", "value": {"systolic": 80, "diastolic": 90}, "unit": None}, "must be below"),
    ({"colour": "red"}, "unknown field"),
    ({"note": "x" * 501}, "note must be"),
])
def test_a_reading_that_a_device_could_not_send_is_refused_with_the_reason(
        api: Api, change: dict, reason: str) -> None:
    before = count(api.app, Observation)
    response = api.reading(**change)
    assert response.status_code == 422
    assert reason in response.get_json()["error"]
    assert count(api.app, Observation) == before


def test_a_repeated_idempotency_key_returns_the_first_reading_and_stores_nothing(
        api: Api) -> None:
    first = api.reading(key="call-17", value=86)
    again = api.reading(key="call-17", value=86)
    assert (first.status_code, again.status_code) == (201, 200)
    one, two = first.get_json(), again.get_json()
    assert two["created"] is False and two["observation"] == one["observation"]
    assert [a["id"] for a in two["alerts"]] == [a["id"] for a in one["alerts"]]
    patient = api.patient(KAREN)
    assert count(api.app, Observation, Observation.patient_id == patient,
                 Observation.device_id == "manual") == 1
    assert count(api.app, StoredResource, StoredResource.resource_type == "Provenance") == 1
    with Session(api.app.config["engine"]) as session:
        alert = session.get(Alert, one["alerts"][0]["id"])
        assert alert is not None and alert.count == 1


def test_the_forms_entry_id_is_an_idempotency_key_too(api: Api) -> None:
    first = api.reading(entry_id="form-1")
    again = api.reading(entry_id="form-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert count(api.app, Observation, Observation.device_id == "manual") == 1


def test_keys_are_per_user_so_two_clinicians_cannot_collide(api: Api) -> None:
    nurse = api.reading(key="k1")
    gp = Api(api.app, "gp.torvet").reading(key="k1")
    assert (nurse.status_code, gp.status_code) == (201, 201)
    assert nurse.get_json()["observation"]["id"] != gp.get_json()["observation"]["id"]


@pytest.mark.parametrize("second", ["other patient", "questionnaire"])
def test_a_key_reused_for_a_different_entry_is_a_409(api: Api, second: str) -> None:
    assert api.reading(key="k2").status_code == 201
    again = (api.reading(index=POUL, key="k2") if second == "other patient"
             else api.answers(key="k2"))
    assert again.status_code == 409


@pytest.mark.parametrize(("username", "index", "status"), [
    ("nurse.aalby", KAREN, 201), ("gp.torvet", KAREN, 201), ("doctor.hospital", KAREN, 201),
    ("nurse.boestrup", ELSE, 201),
    ("secretary.aalby", KAREN, 403), ("patient.karen", KAREN, 403),
    ("doctor.hospital", POUL, 404), ("nurse.boestrup", KAREN, 404), ("gp.skovvej", ELSE, 404),
    ("admin", KAREN, 404), ("patient.karen", POUL, 404),
])
def test_only_clinicians_on_the_team_may_enter_data(app, username: str, index: int,
                                                    status: int) -> None:
    client = Api(app, username)
    for response in (client.reading(index=index), client.answers(index=index)):
        assert response.status_code == status
        if status != 201:
            assert set(response.get_json()) == {"error"}


def test_a_cookie_session_needs_the_csrf_token(app) -> None:
    from tests.test_web import log_in

    client = app.test_client()
    log_in(client)
    patient = app.config["fixture"]["patients"][KAREN]["id"]
    response = client.post(f"/api/patients/{patient}/readings", json=reading_body())
    assert response.status_code == 400
    assert count(app, Observation, Observation.device_id == "manual") == 0


def test_an_entry_is_pushed_live_to_the_care_team_like_a_device_reading(api: Api) -> None:
    body = api.reading(value=86).get_json()
    [batch] = api.app.extensions["telekol"].bridge.batches
    assert [event["type"] for event in batch] == ["observation", "alert"]
    patient = api.patient(KAREN)
    rooms = ["org:gp-torvet", "org:hosp-lung", "org:muni-aalby", f"patient:{patient}"]
    assert all(event["rooms"] == rooms for event in batch)
    assert batch[0]["data"]["id"] == body["observation"]["id"]
    assert (batch[0]["data"]["severity"], batch[0]["data"]["value"]) == ("red", 86)
    assert batch[1]["data"]["id"] == body["alerts"][0]["id"]


def test_a_repeated_entry_is_not_pushed_again(api: Api) -> None:
    api.reading(key="k3")
    api.reading(key="k3")
    assert len(api.app.extensions["telekol"].bridge.batches) == 1


def test_every_entry_leaves_an_audit_record_naming_what_was_created(api: Api) -> None:
    reading = api.reading().get_json()["observation"]["id"]
    answers = api.answers().get_json()
    patient = api.patient(KAREN)
    with Session(api.app.config["engine"]) as session:
        rows = session.exec(select(AuditRecord).where(
            AuditRecord.patient_id == patient, AuditRecord.action == "create")).all()
    resources = {(r.resource, r.door, r.outcome, r.username) for r in rows}
    for resource in (f"Observation/{reading}", f"Observation/{answers['observation']['id']}",
                     f"QuestionnaireResponse/{answers['questionnaire_response']}"):
        assert (resource, "api", "success", "nurse.aalby") in resources


def test_a_cat_given_by_telephone_is_scored_and_recorded_as_entered_by_the_nurse(
        api: Api) -> None:
    response = api.answers(method="telephone")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["kind"], body["score"]) == ("cat", 23)
    assert body["observation"]["valueInteger"] == 23
    response_id = body["questionnaire_response"]
    stored = api.fhir(f"QuestionnaireResponse/{response_id}")
    assert stored["author"]["reference"].startswith("Practitioner/")
    assert stored["source"] == {"reference": f"Patient/{api.patient(KAREN)}"}
    bundle = api.fhir(f"Provenance?target=Observation/{body['observation']['id']}")
    provenance = bundle["entry"][0]["resource"]
    assert provenance["target"] == [{"reference": f"QuestionnaireResponse/{response_id}"},
                                    {"reference": f"Observation/{body['observation']['id']}"}]
    assert "telephone" in {c["code"] for c in provenance["activity"]["coding"]}


def test_a_symptom_diary_given_on_paper_raises_the_symptoms_alert_like_a_device(
        api: Api) -> None:
    answers = {"more_breathless": True, "more_sputum": True, "sputum_colour_changed": True,
               "more_cough": False}
    body = api.answers(questionnaire="copd-symptoms", answers=answers, method="paper").get_json()
    assert body["score"] == 3
    [alert] = body["alerts"]
    assert (alert["rule"], alert["severity"]) == ("symptoms", "red")


def test_a_cat_rise_over_the_previous_phone_cat_raises_the_cat_alert(api: Api) -> None:
    earlier = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds")
    low = dict.fromkeys(CAT, 1)  # 8
    assert api.answers(answers=low, authored=earlier).get_json()["alerts"] == []
    [alert] = api.answers().get_json()["alerts"]  # 23
    assert alert["rule"] == "cat-mcid"


@pytest.mark.parametrize(("change", "reason"), [
    ({"answers": {**CAT, "cough": 6}}, "answers.cough must be an integer from 0 to 5"),
    ({"answers": {k: v for k, v in CAT.items() if k != "sleep"}}, "answers.sleep is required"),
    ({"questionnaire": "phq-9"}, "questionnaire must be one of"),
    ({"authored": "2099-01-01T00:00:00Z"}, "authored"),
    ({"method": "sms"}, "method must be one of"),
])
def test_answers_a_device_could_not_send_are_refused(api: Api, change: dict,
                                                     reason: str) -> None:
    response = api.answers(**change)
    assert response.status_code == 422
    assert reason in response.get_json()["error"]
    assert count(api.app, StoredResource, col(StoredResource.resource_type).in_(
        ["QuestionnaireResponse", "Provenance"])) == 0


def test_a_repeated_questionnaire_key_stores_one_response(api: Api) -> None:
    first, again = api.answers(key="q1"), api.answers(key="q1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["questionnaire_response"] == first.get_json()[
        "questionnaire_response"]
    assert count(api.app, StoredResource,
                 StoredResource.resource_type == "QuestionnaireResponse") == 1
