"""A request works on one database connection, audit included; none free in time means 503.

server/web/context.py: every request's session, its audit records (server/web/auditing.py)
and the services it calls share one pooled connection, so a request never waits for a
second one while holding the first. The pool's checkouts are counted while each request
runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlmodel import Session
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import AuditRecord, Observation
from telekol.server.web import create_app
from telekol.server.web.extensions import socketio

from tests.test_web import csrf_token, log_in


@pytest.fixture
def app(engine, demo, settings: Settings) -> Flask:
    """Return an app on a seeded database, without the live MQTT bridge."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config["fixture"] = demo
    return app


@dataclass
class Checkouts:
    """How often the app's pool handed out a connection, and the most out at once."""

    total: int = 0
    out: int = 0
    most: int = 0


@contextmanager
def counted(app: Flask) -> Iterator[Checkouts]:
    """Count the app's pool checkouts while the block runs."""
    found, engine = Checkouts(), app.extensions["telekol"].engine

    def checkout(*_args: object) -> None:
        found.total, found.out = found.total + 1, found.out + 1
        found.most = max(found.most, found.out)

    def checkin(*_args: object) -> None:
        found.out -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        yield found
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)


def bearer(app: Flask, username: str) -> dict[str, str]:
    """Return an Authorization header for a demo user."""
    response = app.test_client().post("/api/auth/token", json={
        "username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def audit_rows(app: Flask) -> int:
    """Return the number of audit records."""
    with Session(app.extensions["telekol"].engine) as session:
        return len(session.exec(select(AuditRecord.id)).all())


def readings(app: Flask, patient_id: str) -> int:
    """Return the number of a patient's stored Observations (a questionnaire's score is one)."""
    with Session(app.extensions["telekol"].engine) as session:
        return len(session.exec(select(Observation.id).where(
            Observation.patient_id == patient_id)).all())


def karen(app: Flask) -> str:
    """Return the demo patient user's patient id."""
    return next(u["patient"] for u in app.config["fixture"]["users"]
                if u["username"] == "patient.karen")


@pytest.mark.parametrize(("username", "path"), [
    ("patient.karen", "/api/me/observations?code=spo2"),
    ("patient.karen", "/fhir/Patient/{karen}"),
    ("nurse.aalby", "/api/patients"),
    ("nurse.aalby", "/fhir/Observation?patient={karen}"),
    ("nurse.aalby", "/fhir/Patient/no-such-patient"),  # refused: looks the patient up too
])
def test_a_read_and_its_audit_record_use_one_connection(app, username: str, path: str) -> None:
    headers, before = bearer(app, username), audit_rows(app)
    with counted(app) as checkouts:
        response = app.test_client().get(path.format(karen=karen(app)), headers=headers)
    assert response.status_code in (200, 404)
    assert (checkouts.total, checkouts.most) == (1, 1)
    assert audit_rows(app) > before or response.status_code == 404


def test_a_page_and_a_questionnaire_the_patient_sends_use_one_connection_each(app) -> None:
    client = app.test_client()
    assert log_in(client, "patient.karen").status_code == 302
    form = {"csrf_token": csrf_token(client.get("/questionnaire/cat").get_data(as_text=True))}
    form.update(dict.fromkeys(("cough", "phlegm", "chest_tightness", "breathlessness",
                               "activities", "confidence", "sleep", "energy"), "2"))
    before, stored = audit_rows(app), readings(app, karen(app))
    with counted(app) as page:
        assert client.get("/me").status_code == 200
    with counted(app) as sent:
        assert client.post("/questionnaire/cat", data=form).status_code == 200
    assert [(c.total, c.most) for c in (page, sent)] == [(1, 1), (1, 1)]
    assert audit_rows(app) >= before + 2
    assert readings(app, karen(app)) == stored + 1  # the answers are committed, not lost


def test_a_live_connection_and_its_audit_record_use_one_connection(app) -> None:
    token = bearer(app, "nurse.aalby")["Authorization"].removeprefix("Bearer ")
    before = audit_rows(app)
    with counted(app) as checkouts:
        client = socketio.test_client(app, namespace="/live", auth={"token": token})
    assert client.is_connected("/live")
    client.disconnect(namespace="/live")
    assert (checkouts.total, checkouts.most) == (1, 1)
    assert audit_rows(app) == before + 1


@pytest.fixture
def one_connection(engine, demo, settings: Settings, monkeypatch) -> Flask:
    """Return an app whose pool holds one connection and waits 0.2 s for it."""
    monkeypatch.setattr("telekol.server.web.DB_WAIT_SECONDS", 0.2)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url, http_db_connections=1),
                     live=False)
    app.config["fixture"] = demo
    return app


@pytest.mark.parametrize(("path", "kind", "says"), [
    ("/api/patients", "application/json", "busy"),
    ("/fhir/Patient/{karen}", "application/fhir+json", "OperationOutcome"),
])
def test_no_free_connection_is_answered_503_with_retry_after(one_connection, path: str,
                                                             kind: str, says: str) -> None:
    app = one_connection
    headers = bearer(app, "nurse.aalby")
    held = app.extensions["telekol"].engine.connect()  # another request holds the only one
    try:
        response = app.test_client().get(path.format(karen=karen(app)), headers=headers)
    finally:
        held.close()
    assert (response.status_code, response.mimetype) == (503, kind)
    assert response.headers["Retry-After"].isdigit() and says in response.get_data(as_text=True)
    again = app.test_client().get(path.format(karen=karen(app)), headers=headers)
    assert again.status_code == 200


@pytest.mark.parametrize(("lang", "text"), [("da", "Serveren har travlt"),
                                            ("en", "The server is busy")])
def test_a_page_without_a_free_connection_says_so_in_the_readers_language(
        one_connection, lang: str, text: str) -> None:
    client = one_connection.test_client()
    assert log_in(client).status_code == 302
    client.get(f"/language/{lang}?next=/login")
    held = one_connection.extensions["telekol"].engine.connect()
    try:
        response = client.get("/")
    finally:
        held.close()
    assert (response.status_code, response.mimetype) == (503, "text/plain")
    assert "Retry-After" in response.headers and text in response.get_data(as_text=True)
