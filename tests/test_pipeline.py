"""End to end: mosquitto_pub -> broker -> gateway -> database -> /fhir and Socket.IO."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.stack_fixtures import LiveClient, Stack, StatusListener

pytestmark = pytest.mark.integration


def measurement(spo2: float = 95, msg_id: str | None = None, **extra: object) -> dict:
    """Return a valid measurement object."""
    return {"msg_id": msg_id or f"t-{uuid.uuid4().hex[:16]}",
            "taken_at": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
            "readings": [{"code": "spo2", "value": spo2, "unit": "%"},
                         {"code": "pulse", "value": 88}], **extra}


def fhir_get(stack: Stack, path: str, token: str | None, **params: str) -> requests.Response:
    """GET a FHIR path with an optional bearer token."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{stack.base_url}/fhir/{path}", params=params, headers=headers,
                        timeout=10)


def monitoring_user(stack: Stack, patient_id: str) -> str:
    """Return the username of a clinician whose organisation is on the patient's team."""
    team = next(p for p in stack.fixture["patients"] if p["id"] == patient_id)["care_team"]
    return next(u["username"] for u in stack.fixture["users"] if u["organization"] == team[0])


def test_a_red_reading_is_stored_readable_over_fhir_and_pushed_live(stack: Stack) -> None:
    device = stack.device(0)
    nurse = monitoring_user(stack, device["patient"])
    token = stack.token(nurse)
    live = LiveClient(stack, token=token)
    status = StatusListener(stack, device)
    body = measurement(spo2=86)
    try:
        result = stack.mosquitto_pub(device, json.dumps(body))
        assert result.returncode == 0, result.stderr
        assert status.wait_for(body["msg_id"]) == {
            "msg_id": body["msg_id"], "result": "accepted", "errors": []}
        alert = live.next_alert(device["patient"])
    finally:
        live.close()
        status.close()
    assert alert["severity"] == "red"
    # One unresolved alert per patient and rule: on the shared stack another test may have
    # raised (and acknowledged) this patient's SpO2 alert first; the reading then updates it.
    assert alert["status"] in {"open", "acknowledged"} and alert["count"] >= 1
    assert "86" in alert["reason"] and "88" in alert["reason"]
    observation = fhir_get(stack, f"Observation/{alert['observation']}", token)
    assert observation.status_code == 200
    assert observation.headers["Content-Type"].startswith("application/fhir+json")
    resource = observation.json()
    assert resource["effectiveDateTime"] == body["taken_at"]
    assert resource["subject"]["reference"] == f"Patient/{device['patient']}"
    assert resource["device"]["reference"] == f"Device/{device['device_id']}"
    codes = {(c["system"], c["code"]) for c in resource["code"]["coding"]}
    assert ("http://loinc.org", "2708-6") in codes
    assert ("urn:iso:std:iso:11073:10101", "150456") in codes
    assert resource["valueQuantity"] == {"value": 86, "unit": "%",
                                         "system": "http://unitsofmeasure.org", "code": "%"}
    assert resource["interpretation"][0]["coding"][0]["code"] == "LL"


def test_the_observation_search_finds_the_reading_by_patient_code_and_date(stack: Stack) -> None:
    device = stack.device(1)
    token = stack.token(monitoring_user(stack, device["patient"]))
    status = StatusListener(stack, device)
    body = measurement(spo2=94)
    before = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    try:
        stack.mosquitto_pub(device, json.dumps(body))
        assert status.wait_for(body["msg_id"])["result"] == "accepted"
    finally:
        status.close()
    bundle = fhir_get(stack, "Observation", token, patient=device["patient"],
                      code="http://loinc.org|2708-6", date=f"ge{before[:10]}",
                      _sort="-date", _count="5").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    keys = [i["value"] for e in bundle["entry"] for i in e["resource"]["identifier"]]
    assert any(body["msg_id"] in key for key in keys)
    assert all(e["resource"]["code"]["coding"][0]["code"] == "2708-6" for e in bundle["entry"])


def test_a_repeated_msg_id_is_stored_once_and_answered_duplicate(stack: Stack) -> None:
    device = stack.device(2)
    token = stack.token(monitoring_user(stack, device["patient"]))
    status = StatusListener(stack, device)
    body = measurement(spo2=95)
    try:
        stack.mosquitto_pub(device, json.dumps(body))
        assert status.wait_for(body["msg_id"])["result"] == "accepted"
        stack.mosquitto_pub(device, json.dumps(body))
        assert status.wait_for(body["msg_id"])["result"] == "duplicate"
    finally:
        status.close()
    bundle = fhir_get(stack, "Observation", token, patient=device["patient"],
                      _count="1000").json()
    stored = [e for e in bundle["entry"]
              if any(body["msg_id"] in i["value"] for i in e["resource"]["identifier"])]
    assert len(stored) == 2  # one SpO2 and one pulse Observation, not four


def test_a_device_publishing_on_another_devices_topic_stores_nothing(stack: Stack) -> None:
    intruder, victim = stack.device(3), stack.device(4)
    token = stack.token(monitoring_user(stack, victim["patient"]))
    status = StatusListener(stack, intruder)
    forged = measurement(spo2=70)
    sentinel = measurement(spo2=96)
    try:
        stack.mosquitto_pub(intruder, json.dumps(forged),
                            topic=f"telekol/v1/devices/{victim['device_id']}/measurements")
        stack.mosquitto_pub(intruder, json.dumps(sentinel))
        # The sentinel's status proves the gateway has handled everything sent before it.
        assert status.wait_for(sentinel["msg_id"])["result"] == "accepted"
    finally:
        status.close()
    bundle = fhir_get(stack, "Observation", token, patient=victim["patient"],
                      _count="1000").json()
    assert not any(forged["msg_id"] in i["value"] for e in bundle.get("entry", [])
                   for i in e["resource"]["identifier"])


def test_garbage_is_quarantined_and_the_next_valid_message_is_stored(stack: Stack) -> None:
    device = stack.device(5)
    status = StatusListener(stack, device)
    valid = measurement(spo2=93)
    try:
        stack.mosquitto_pub(device, b"\x00not json at all {")
        rejected = status.wait_for(None)
        stack.mosquitto_pub(device, json.dumps(valid))
        accepted = status.wait_for(valid["msg_id"])
    finally:
        status.close()
    assert rejected["result"] == "rejected" and rejected["errors"]
    assert accepted["result"] == "accepted"
    admin = stack.token("admin")
    items = requests.get(f"{stack.base_url}/api/quarantine", timeout=10,
                         headers={"Authorization": f"Bearer {admin}"}).json()
    assert any(i["device_id"] == device["device_id"] and "not json" in i["payload"]
               for i in items)


def test_an_implausible_value_is_rejected_with_its_reason(stack: Stack) -> None:
    device = stack.device(5)
    status = StatusListener(stack, device)
    body = measurement(spo2=101)
    try:
        stack.mosquitto_pub(device, json.dumps(body))
        answer = status.wait_for(body["msg_id"])
    finally:
        status.close()
    assert answer["result"] == "rejected"
    assert any("spo2" in error for error in answer["errors"])


def test_an_organisation_outside_the_care_team_receives_nothing(stack: Stack) -> None:
    patients = {p["id"]: p for p in stack.fixture["patients"]}
    outside = next(d for d in stack.fixture["devices"]
                   if "hosp-lung" not in patients[d["patient"]]["care_team"])
    inside = next(d for d in stack.fixture["devices"]
                  if "hosp-lung" in patients[d["patient"]]["care_team"])
    doctor = LiveClient(stack, token=stack.token("doctor.hospital"))
    hidden, shown = measurement(spo2=80), measurement(spo2=81)
    try:
        stack.mosquitto_pub(outside, json.dumps(hidden))
        stack.mosquitto_pub(inside, json.dumps(shown))
        # Events reach a screen in the order the gateway stored them, so if the hidden
        # reading's alerts had been sent here they would come before the shown one's.
        seen = [doctor.alerts.get(timeout=20)]
        while seen[-1]["patient"]["id"] != inside["patient"]:
            seen.append(doctor.alerts.get(timeout=20))
        while not doctor.alerts.empty():  # anything already delivered after it
            seen.append(doctor.alerts.get_nowait())
    finally:
        doctor.close()
    assert outside["patient"] not in {a["patient"]["id"] for a in seen}
    token = stack.token("doctor.hospital")
    assert fhir_get(stack, f"Patient/{outside['patient']}", token).status_code == 404
    assert fhir_get(stack, f"Patient/{inside['patient']}", token).status_code == 200


def test_a_reconnecting_screen_fetches_missed_alerts(stack: Stack) -> None:
    device = stack.device(6)
    user = monitoring_user(stack, device["patient"])
    token = stack.token(user)
    headers = {"Authorization": f"Bearer {token}"}
    # Every change since now: a new alert, or a repeat of one already open for this patient.
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    status = StatusListener(stack, device)
    body = measurement(spo2=90)
    try:
        stack.mosquitto_pub(device, json.dumps(body))
        assert status.wait_for(body["msg_id"])["result"] == "accepted"
    finally:
        status.close()
    missed = requests.get(f"{stack.base_url}/api/alerts", params={"since": since},
                          headers=headers, timeout=10).json()
    mine = {a["rule"]: a for a in missed if a["patient"]["id"] == device["patient"]}
    assert mine["threshold:spo2"]["details"]["value"] == 90  # (a baseline rule may fire too)


def test_fhir_without_a_token_is_refused_with_an_operation_outcome(stack: Stack) -> None:
    response = fhir_get(stack, "Observation", None, patient=stack.device(0)["patient"])
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert fhir_get(stack, "metadata", None).json()["resourceType"] == "CapabilityStatement"


def test_live_connections_without_credentials_are_refused(stack: Stack) -> None:
    import socketio

    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(stack.base_url, namespaces=["/live"], transports=["websocket"],
                       auth={"token": "forged"}, wait_timeout=5)


def test_health_reports_every_part_ok(stack: Stack) -> None:
    response = requests.get(f"{stack.base_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "gateway": "ok"}


def test_a_token_is_refused_for_a_wrong_password(stack: Stack) -> None:
    response = requests.post(f"{stack.base_url}/api/auth/token", timeout=10,
                             json={"username": "nurse.aalby", "password": "wrong"})
    assert response.status_code == 401
    assert "access_token" not in response.json()
