"""Live connections are re-checked after connect, in every web worker: logout, deactivation
and a password change disconnect them, and a patient out of sight stops being pushed, within
5 s (CONTRACT §7 "Sessions end"). A real python-socketio client on a running stack."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio
from telekol.server.demo.seed import HOSPITAL_PATTERN
from telekol.server.ops.supervisor import child_env

from tests.stack_fixtures import Stack, StatusListener
from tests.test_pipeline import measurement

pytestmark = pytest.mark.integration
WITHIN = 5.0  # seconds, CONTRACT §7
CONNECTIONS = 4  # spread over the stack's gunicorn workers


class Watcher:
    """A /live connection that records its events and notices its disconnect."""

    def __init__(self, stack: Stack, token: str | None = None,
                 cookies: dict[str, str] | None = None) -> None:
        self.observations: queue.Queue[dict[str, Any]] = queue.Queue()
        self.gone = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("observation", self.observations.put, namespace="/live")
        self.sio.on("disconnect", lambda *_: self.gone.set(), namespace="/live")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies \
            else {}
        self.sio.connect(stack.base_url, namespaces=["/live"], transports=["websocket"],
                         auth={"token": token} if token else None, headers=headers,
                         wait_timeout=10)

    def close(self) -> None:
        """Disconnect if still connected."""
        if not self.gone.is_set():
            self.sio.disconnect()


def admin_headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token('admin')}"}


def bearer(stack: Stack, username: str, password: str) -> str:
    answer = requests.post(f"{stack.base_url}/api/auth/token", timeout=10,
                           json={"username": username, "password": password})
    answer.raise_for_status()
    return answer.json()["access_token"]


@pytest.fixture
def nurse(stack: Stack) -> Iterator[tuple[str, str]]:
    """A fresh nurse of the first demo patient's monitoring organisation (ours to end)."""
    username, password = f"live.{uuid.uuid4().hex[:8]}", "Lyse-Nætter-Over-Aalby-7"
    org = stack.user("nurse.aalby")["organization"]
    answer = requests.post(f"{stack.base_url}/api/admin/users", headers=admin_headers(stack),
                           json={"username": username, "name": "Live Test", "role": "nurse",
                                 "organization": org, "password": password}, timeout=10)
    assert answer.status_code == 201, answer.text
    yield username, password


def all_gone(watchers: list[Watcher], started: float) -> float:
    """Wait until every connection is disconnected; return how long it took."""
    for watcher in watchers:
        assert watcher.gone.wait(max(0.0, started + WITHIN - time.monotonic())), \
            "a live connection outlived its session by more than 5 s"
    return time.monotonic() - started


def browser_login(stack: Stack, username: str, password: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{stack.base_url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    answer = browser.post(f"{stack.base_url}/login", allow_redirects=False, timeout=10,
                          data={"username": username, "password": password, "csrf_token": token})
    assert answer.status_code == 302
    return browser


def test_logout_disconnects_the_users_live_connections_within_5_s(stack: Stack, nurse) -> None:
    username, password = nurse
    browser = browser_login(stack, username, password)
    watchers = [Watcher(stack, cookies=browser.cookies.get_dict()) for _ in range(CONNECTIONS)]
    watchers.append(Watcher(stack, token=bearer(stack, username, password)))
    try:
        page = browser.get(f"{stack.base_url}/messages", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        started = time.monotonic()
        assert browser.post(f"{stack.base_url}/logout", data={"csrf_token": csrf},
                            allow_redirects=False, timeout=10).status_code == 302
        all_gone(watchers, started)
    finally:
        for watcher in watchers:
            watcher.close()


@pytest.mark.parametrize("change", ["deactivate", "password"])
def test_deactivation_or_a_password_change_disconnects_within_5_s(stack: Stack, nurse,
                                                                  change: str) -> None:
    username, password = nurse
    watchers = [Watcher(stack, token=bearer(stack, username, password))
                for _ in range(CONNECTIONS)]
    try:
        started = time.monotonic()
        body = {"password": "Helt-Nyt-Kodeord-Til-Test-9"} if change == "password" else None
        answer = requests.post(f"{stack.base_url}/api/admin/users/{username}/{change}",
                               headers=admin_headers(stack), json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        all_gone(watchers, started)
    finally:
        for watcher in watchers:
            watcher.close()


def test_a_deactivation_from_the_command_line_disconnects_within_5_s(stack: Stack,
                                                                      nurse) -> None:
    # Another process, with no broker connection: the web workers notice by themselves.
    username, password = nurse
    watchers = [Watcher(stack, token=bearer(stack, username, password))
                for _ in range(CONNECTIONS)]
    try:
        done = subprocess.run([sys.executable, "-m", "telekol.server.ops.cli", "user", "deactivate",
                               username], env=child_env(stack.settings), capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        all_gone(watchers, time.monotonic())  # counted from the command's end (its commit)
    finally:
        for watcher in watchers:
            watcher.close()


def shared_patient(stack: Stack) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """Return a demo device whose patient the municipality keeps and a GP sees by consent,
    the municipality's and the GP's users, and a device of another patient the GP sees."""
    kinds = {o["id"]: o["kind"] for o in stack.fixture["organizations"]}
    users = {u["organization"]: u["username"] for u in stack.fixture["users"]
             if u["role"] in ("nurse", "gp", "doctor")}
    teams = {p["id"]: p["care_team"] for p in stack.fixture["patients"]}
    for device in stack.fixture["devices"]:
        patient = next(p for p in stack.fixture["patients"] if p["id"] == device["patient"])
        team = {kinds[o]: o for o in patient["care_team"]}
        if patient["cpr"] in HOSPITAL_PATTERN or not {"gp", "municipality"} <= set(team):
            continue
        sentinel = next((d for d in stack.fixture["devices"] if d["patient"] != patient["id"]
                         and team["gp"] in teams[d["patient"]]), None)
        if sentinel is not None:
            return device, users[team["municipality"]], users[team["gp"]], sentinel
    raise AssertionError("no demo patient shared by a municipality and a GP")


def set_sharing(stack: Stack, username: str, patient: str, granted: bool) -> None:
    answer = requests.post(
        f"{stack.base_url}/api/patients/{patient}/consents", timeout=10,
        headers={"Authorization": f"Bearer {stack.token(username)}"},
        json={"scope": "sharing", "granted": granted, "method": "verbal",
              "note": "live sight test"})
    assert answer.status_code in (200, 201), answer.text


def received(watcher: Watcher, msg_id: str, timeout: float) -> list[dict[str, Any]]:
    """Return the events the connection got up to and including `msg_id`'s (or fail)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1]["msg_id"] != msg_id:
        try:
            got.append(watcher.observations.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"no observation event for {msg_id} in {timeout} s") from None
    return got  # a measurement of two readings is two events: the second may follow


def test_a_withdrawn_consent_stops_the_pushes_to_the_organisation_that_lost_sight(
        stack: Stack) -> None:
    device, keeper, outsider, sentinel = shared_patient(stack)
    patient = device["patient"]
    kept = Watcher(stack, token=stack.token(keeper))
    lost = Watcher(stack, token=stack.token(outsider))
    listeners = {d["device_id"]: StatusListener(stack, d) for d in (device, sentinel)}

    def send(from_device: dict[str, Any]) -> str:
        body = measurement(spo2=95)
        assert stack.mosquitto_pub(from_device, json.dumps(body)).returncode == 0
        status = listeners[from_device["device_id"]].wait_for(body["msg_id"])
        assert status["result"] == "accepted"
        return body["msg_id"]

    try:
        before = send(device)
        received(kept, before, 20)
        received(lost, before, 20)  # both see the patient at first
        set_sharing(stack, keeper, patient, False)
        started = time.monotonic()
        after = send(device)
        received(kept, after, WITHIN)  # the custodian still gets it
        assert time.monotonic() - started < WITHIN
        # The GP's connection gets its room's events in order: once it has the sentinel,
        # sent after, anything pushed about the patient would have come before it.
        assert requests.get(f"{stack.base_url}/api/patients/{patient}/episode", timeout=10,
                            headers={"Authorization": f"Bearer {stack.token(outsider)}"}
                            ).status_code == 404  # the GP no longer sees the patient
        since = received(lost, send(sentinel), 20)
        assert after not in [o["msg_id"] for o in since]  # (each reading is an event)
    finally:
        set_sharing(stack, keeper, patient, True)
        kept.close()
        lost.close()
        for listener in listeners.values():
            listener.close()
