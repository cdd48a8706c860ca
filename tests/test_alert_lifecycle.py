"""Alert lifecycle: acknowledge and resolve, by whom, visible to the whole care team."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import requests
from sqlmodel import Session, select
from telekol.server.alerts.lifecycle import (
    AlertNotFound,
    TransitionRefused,
    acknowledge,
    resolve,
)
from telekol.server.ingest.batch import IngestService
from telekol.server.models import Alert, User

from tests.stack_fixtures import LiveClient, Stack, StatusListener
from tests.test_ingest import NOW, delivery, reading


@pytest.fixture
def alert_id(engine, demo) -> int:
    """Create a red alert for the first demo patient and return its id."""
    device = demo["devices"][0]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("red", 84))])
    with Session(engine) as session:
        return session.exec(select(Alert.id)).one()


def user(session: Session, username: str) -> User:
    """Return a demo user."""
    return session.exec(select(User).where(User.username == username)).one()


def test_a_nurse_on_the_team_acknowledges_with_a_note(engine, alert_id) -> None:
    with Session(engine) as session:
        nurse = user(session, "nurse.aalby")
        alert = acknowledge(session, nurse, alert_id, "  called the patient  ", clock=lambda: NOW)
        assert (alert.status, alert.acknowledged_by, alert.acknowledged_at, alert.note) == (
            "acknowledged", nurse.id, NOW, "called the patient")


def test_acknowledging_twice_keeps_the_first_acknowledgement(engine, alert_id) -> None:
    with Session(engine) as session:
        # Only the responsible (monitoring) organisation acts; the GP is read-only
        # (tests/test_alert_workflow.py), so the repeat comes from the same nurse, later.
        nurse = user(session, "nurse.aalby")
        acknowledge(session, nurse, alert_id, "first", clock=lambda: NOW)
        alert = acknowledge(session, nurse, alert_id, "again", clock=lambda: datetime.now(UTC))
        assert (alert.acknowledged_by, alert.acknowledged_at, alert.note) == (nurse.id, NOW,
                                                                             "first")


def test_resolving_records_who_and_acknowledges_too(engine, alert_id) -> None:
    with Session(engine) as session:
        nurse = user(session, "nurse.aalby")  # the responsible organisation's nurse
        alert = resolve(session, nurse, alert_id, "adjusted treatment", clock=lambda: NOW)
        assert (alert.status, alert.resolved_by, alert.acknowledged_by, alert.resolution) == (
            "resolved", nurse.id, nurse.id, "manual")
        with pytest.raises(TransitionRefused):
            acknowledge(session, nurse, alert_id)


@pytest.mark.parametrize("username", ["nurse.boestrup", "gp.skovvej", "admin"])
def test_an_alert_outside_the_users_care_teams_looks_absent(engine, alert_id, username) -> None:
    with Session(engine) as session, pytest.raises(AlertNotFound):
        acknowledge(session, user(session, username), alert_id)


def test_a_patient_cannot_acknowledge_their_own_alert(engine, alert_id) -> None:
    with Session(engine) as session, pytest.raises(TransitionRefused):
        acknowledge(session, user(session, "patient.karen"), alert_id)


@pytest.mark.integration
def test_one_nurses_acknowledgement_updates_the_gps_screen_live(stack: Stack) -> None:
    patients = {p["id"]: p for p in stack.fixture["patients"]}
    device = next(d for d in stack.fixture["devices"]
                  if {"muni-aalby", "gp-torvet"} <= set(patients[d["patient"]]["care_team"]))
    nurse_token, gp_token = stack.token("nurse.aalby"), stack.token("gp.torvet")
    gp = LiveClient(stack, token=gp_token)
    status = StatusListener(stack, device)
    body = {"msg_id": f"ack-{uuid.uuid4().hex[:12]}",
            "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "readings": [{"code": "spo2", "value": 83}]}
    try:
        stack.mosquitto_pub(device, json.dumps(body))
        assert status.wait_for(body["msg_id"])["result"] == "accepted"
        created = gp.next_alert(device["patient"])
        response = requests.post(f"{stack.base_url}/api/alerts/{created['id']}/acknowledge",
                                 json={"note": "ringer op"}, timeout=10,
                                 headers={"Authorization": f"Bearer {nurse_token}"})
        assert response.status_code == 200
        updated = gp.next_alert(device["patient"])
    finally:
        gp.close()
        status.close()
    assert updated["id"] == created["id"]
    assert updated["status"] == "acknowledged"
    assert updated["acknowledged_by"] == "Sygeplejerske Mette Holm"
    assert updated["note"] == "ringer op"


@pytest.mark.integration
def test_a_cookie_session_cannot_acknowledge_without_the_csrf_token(stack: Stack) -> None:
    import re

    browser = requests.Session()
    page = browser.get(f"{stack.base_url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    browser.post(f"{stack.base_url}/login", timeout=10, data={
        "username": "nurse.aalby", "password": stack.user("nurse.aalby")["password"],
        "csrf_token": token})
    refused = browser.post(f"{stack.base_url}/api/alerts/1/acknowledge", json={}, timeout=10)
    assert refused.status_code == 400
    allowed = browser.post(f"{stack.base_url}/api/alerts/999999/acknowledge", json={},
                           headers={"X-CSRFToken": token}, timeout=10)
    assert allowed.status_code == 404
