"""Failed-login counting, token and session invalidation, cookies, and clean logs (the
delays themselves: tests/test_login_delays.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select
from telekol.server.accounts import admin
from telekol.server.accounts import login as accounts
from telekol.server.accounts.login import MAX_FAILED_LOGINS, authenticate
from telekol.server.config import Settings
from telekol.server.db import session_scope
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import User
from telekol.server.web import create_app

from tests.test_web import csrf_token

START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the app (no sleeping in tests)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(engine, demo, settings: Settings, clock: Clock):
    """An in-process app on a seeded database, with a settable clock."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(TELEKOL_CLOCK=clock, fixture=demo)
    return app


def form_login(client, username: str, password: str):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def api_login(client, username: str, password: str):
    return client.post("/api/auth/token", json={"username": username, "password": password})


def user_row(engine, username: str) -> User:
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).one()


def error_text(response) -> str:
    html = response.get_data(as_text=True)
    return html[html.index('role="alert"'):].split("</p>")[0]


def test_a_success_resets_the_count_of_consecutive_failures(app, engine) -> None:
    client = app.test_client()
    for _ in range(MAX_FAILED_LOGINS - 1):
        api_login(client, "gp.torvet", "wrong")
    assert user_row(engine, "gp.torvet").failed_logins == MAX_FAILED_LOGINS - 1
    assert api_login(client, "gp.torvet", DEMO_PASSWORD).status_code == 200
    for _ in range(MAX_FAILED_LOGINS - 1):
        api_login(client, "gp.torvet", "wrong")
    assert api_login(client, "gp.torvet", DEMO_PASSWORD).status_code == 200


def test_unknown_usernames_look_like_wrong_passwords(app, monkeypatch) -> None:
    client = app.test_client()
    unknown, wrong = form_login(client, "nobody", "x"), form_login(client, "admin", "x")
    assert unknown.status_code == wrong.status_code == 401
    assert error_text(unknown) == error_text(wrong)
    assert api_login(client, "nobody", "x").get_json() == api_login(client, "admin", "x"
                                                                    ).get_json()
    # Same timing path: one argon2 verification and one counting UPDATE either way.
    calls: list[str] = []
    real_hasher, real_count = accounts._hasher, accounts._count_failure

    class SpyHasher:
        def verify(self, hashed: str, password: str) -> bool:
            calls.append("verify")
            return real_hasher.verify(hashed, password)

    monkeypatch.setattr(accounts, "_hasher", SpyHasher())
    monkeypatch.setattr(accounts, "_count_failure",
                        lambda *a: calls.append("count") or real_count(*a))
    for username in ("nobody", "admin"):
        calls.clear()
        api_login(client, username, "x")
        assert calls == ["verify", "count"], username


def test_a_deactivated_account_with_the_right_password_is_refused(engine, demo) -> None:
    with session_scope(engine) as session:
        admin.deactivate(session, "nurse.boestrup")
    with Session(engine) as session:
        assert authenticate(session, "nurse.boestrup", DEMO_PASSWORD) is None


def bearer(client, username: str = "gp.torvet") -> dict[str, str]:
    token = api_login(client, username, DEMO_PASSWORD).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_a_password_change_or_deactivation_ends_tokens_and_sessions(app, engine,
                                                                    change: str) -> None:
    client, browser = app.test_client(), app.test_client()
    headers = bearer(client)
    assert form_login(browser, "gp.torvet", DEMO_PASSWORD).status_code == 302
    assert client.get("/api/patients", headers=headers).status_code == 200
    assert browser.get("/api/patients").status_code == 200
    with session_scope(engine) as session:
        if change == "password":
            admin.set_password(session, "gp.torvet", "a-new-long-password")
        else:
            admin.deactivate(session, "gp.torvet")
    assert client.get("/api/patients", headers=headers).status_code == 401
    assert browser.get("/api/patients").status_code == 401
    if change == "password":
        fresh = app.test_client()
        assert api_login(fresh, "gp.torvet", DEMO_PASSWORD).status_code == 401
        assert api_login(fresh, "gp.torvet", "a-new-long-password").status_code == 200


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookies_are_secure_behind_https_and_last_eight_hours(
        engine, demo, settings, monkeypatch, secure: bool) -> None:
    if secure:
        monkeypatch.setenv("TELEKOL_SECURE_COOKIES", "1")
    else:
        monkeypatch.delenv("TELEKOL_SECURE_COOKIES", raising=False)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    assert app.permanent_session_lifetime == timedelta(hours=8)
    client = app.test_client()
    cookie = session_cookie(form_login(client, "gp.torvet", DEMO_PASSWORD))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("; Secure" in cookie) is secure
    assert "Expires=" in cookie


def test_no_cpr_number_or_patient_name_reaches_the_log(app, engine, demo, caplog) -> None:
    from telekol.server.device_messages.measurements import parse_measurements
    from telekol.server.ingest.batch import IngestService, ParsedDelivery

    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    service = IngestService(engine)
    for index, device in enumerate(demo["devices"]):
        body = json.dumps({"msg_id": f"m{index}", "taken_at": now.isoformat(), "readings": [
            {"code": "spo2", "value": 84}, {"code": "pulse", "value": 130}]}).encode()
        topic = f"telekol/v1/devices/{device['device_id']}/measurements"
        service.ingest([ParsedDelivery(topic, device["device_id"], now,
                                       parse_measurements(body, now), body)])
    client = app.test_client()
    for username in ("nurse.aalby", "doctor.hospital", "patient.karen"):
        headers = bearer(client, username)
        client.get("/api/patients", headers=headers)
        client.get("/api/alerts", headers=headers)
        for patient in demo["patients"]:
            client.get(f"/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|{patient['cpr']}",
                       headers=headers)
            client.get(f"/fhir/Patient/{patient['id']}/$everything", headers=headers)
            client.get(f"/fhir/Observation?patient={patient['id']}", headers=headers)
    for patient in demo["patients"]:  # names and CPR numbers typed as usernames
        api_login(client, patient["cpr"], patient["name"])
    form_login(client, "patient.karen", DEMO_PASSWORD)
    client.get("/")
    secrets = {p["cpr"] for p in demo["patients"]}
    secrets |= {f"{p['cpr'][:6]}-{p['cpr'][6:]}" for p in demo["patients"]}
    secrets |= {p["name"] for p in demo["patients"]}
    secrets |= {p["name"].split()[-1] for p in demo["patients"]}  # family names
    assert caplog.records, "nothing was logged at all: is the capture working?"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{record.name} logged patient data: {text[:200]}"
