"""Web doors in-process with Flask's test client: pages, login, tokens, FHIR errors."""

from __future__ import annotations

import re

import pytest
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.web import create_app


@pytest.fixture
def app(engine, demo, settings: Settings):
    """Return an app on a seeded database, without the live MQTT bridge."""
    fixture = demo
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config["fixture"] = fixture
    return app


def csrf_token(html: str) -> str:
    """Return the CSRF token of a rendered form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


def log_in(client, username: str = "nurse.aalby", password: str = DEMO_PASSWORD):
    """Log in through the form like a browser."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


@pytest.mark.parametrize(("lang", "text"), [("da", "Log ind"), ("en", "Log in")])
def test_the_login_page_speaks_danish_and_english(app, lang: str, text: str) -> None:
    page = app.test_client().get(f"/login?lang={lang}").get_data(as_text=True)
    assert f"<h1>{text}</h1>" in page
    assert f'<html lang="{lang}">' in page


def test_danish_is_the_default_even_for_an_english_browser(app) -> None:
    page = app.test_client().get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Adgangskode" in page.get_data(as_text=True)


def test_a_chosen_language_is_remembered_and_can_be_switched_back(app) -> None:
    client = app.test_client()
    response = client.get("/language/en?next=/login")
    assert response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert "Password" in page and "/language/da?next=/login\"" in page
    client.get("/language/da?next=/login")
    assert "Adgangskode" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("asset", ["vendor/socket.io.min.js", "js/worklist.js", "css/app.css",
                                   "css/worklist.css"])
def test_the_pages_assets_are_served_locally(app, asset: str) -> None:
    response = app.test_client().get(f"/static/{asset}")
    assert response.status_code == 200 and len(response.data) > 100


def test_the_dashboard_requires_login(app) -> None:
    response = app.test_client().get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_nurse_logs_in_and_sees_only_her_organisations_patients(app) -> None:
    client = app.test_client()
    assert log_in(client).status_code == 302
    patients = client.get("/api/patients").get_json()
    fixture = app.config["fixture"]
    expected = {p["id"] for p in fixture["patients"] if "muni-aalby" in p["care_team"]}
    assert {p["id"] for p in patients} == expected
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused_on_the_form(app) -> None:
    response = log_in(app.test_client(), password="nope")
    assert response.status_code == 401


def test_the_login_form_refuses_a_post_without_csrf_token(app) -> None:
    response = app.test_client().post("/login", data={"username": "nurse.aalby",
                                                       "password": DEMO_PASSWORD})
    assert response.status_code == 400


def test_login_does_not_redirect_to_another_site(app) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "nurse.aalby", "password": DEMO_PASSWORD,
                                           "csrf_token": token, "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_a_token_works_like_the_session(app) -> None:
    client = app.test_client()
    body = client.post("/api/auth/token", json={"username": "gp.torvet",
                                                 "password": DEMO_PASSWORD}).get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/patients", headers=headers).status_code == 200
    assert client.get("/api/patients", headers={"Authorization": "Bearer forged"}
                      ).status_code == 401


@pytest.mark.parametrize("body", [None, {}, {"username": 1, "password": "x"}, ["a"]])
def test_a_malformed_token_request_gets_a_clear_400(app, body) -> None:
    response = app.test_client().post("/api/auth/token", json=body)
    assert response.status_code == 400 and "username" in response.get_json()["error"]


def test_an_expired_token_is_refused(app, settings) -> None:
    from telekol.server.accounts.login import TokenSigner

    signer = TokenSigner(app.config["SECRET_KEY"], ttl_seconds=-1)
    client = app.test_client()
    user_id = 1
    token = signer._serializer.dumps({"uid": user_id})
    assert signer.user_id(token) is None
    assert client.get("/api/patients", headers={"Authorization": f"Bearer {token}x"}
                      ).status_code == 401


def test_fhir_metadata_needs_no_login_and_lists_what_is_implemented(app) -> None:
    response = app.test_client().get("/fhir/metadata")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    kinds = {r["type"] for r in response.get_json()["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Device"} <= kinds  # the full list: test_fhir_api.py


def test_fhir_refuses_xml_with_406(app) -> None:
    response = app.test_client().get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert response.status_code == 406
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_fhir_finds_a_patient_by_cpr_for_the_care_team_only(app) -> None:
    client = app.test_client()
    fixture = app.config["fixture"]
    patient = fixture["patients"][1]  # not on the hospital's team
    query = f"/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|{patient['cpr']}"
    for username, found in (("nurse.aalby", 1), ("doctor.hospital", 0)):
        token = client.post("/api/auth/token", json={"username": username,
                                                      "password": DEMO_PASSWORD}).get_json()
        bundle = client.get(query, headers={"Authorization": f"Bearer {token['access_token']}"})
        assert bundle.get_json()["total"] == found
        read = client.get(f"/fhir/Patient/{patient['id']}",
                          headers={"Authorization": f"Bearer {token['access_token']}"})
        assert read.status_code == (200 if found else 404)


def test_responses_carry_security_headers(app) -> None:
    headers = app.test_client().get("/login").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_pages_load_no_asset_from_the_internet(app) -> None:
    client = app.test_client()
    log_in(client)
    for page in ("/login", "/"):
        html = client.get(page).get_data(as_text=True)
        assert not re.search(r'(src|href)="(https?:)?//', html), page


def test_an_administrator_sees_no_clinical_data(app) -> None:
    client = app.test_client()
    log_in(client, "admin")
    assert client.get("/api/patients").get_json() == []
    assert client.get("/").headers["Location"] == "/admin/users"  # no patient list at all


@pytest.mark.parametrize(("path", "kind"), [("/fhir/Observation", "OperationOutcome"),
                                             ("/api/alerts/1/acknowledge", None)])
def test_an_unauthenticated_write_gets_401_not_a_csrf_error(app, path: str, kind) -> None:
    response = app.test_client().post(path, json={"resourceType": "Observation"},
                                      headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 401
    if kind:
        assert response.get_json()["resourceType"] == kind


def test_the_patient_list_shows_each_types_latest_reading_and_the_worst_alert(app, engine) -> None:
    from telekol.server.ingest.batch import IngestService

    from tests.test_ingest import NOW, delivery, reading

    fixture = app.config["fixture"]
    device, patient = fixture["devices"][0]["device_id"], fixture["patients"][0]["id"]
    service = IngestService(engine, clock=lambda: NOW)
    service.ingest([delivery(device, reading("older", 90, minutes_ago=30))])
    service.ingest([delivery(device, reading("newer", 96, minutes_ago=5))])
    client = app.test_client()
    log_in(client)
    summary = next(p for p in client.get("/api/patients").get_json() if p["id"] == patient)
    assert summary["latest"]["spo2"]["msg_id"] == "newer"
    assert (summary["status"], summary["open_alerts"]) == ("yellow", 1)
