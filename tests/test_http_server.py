"""`telekol server` as it runs in production: gunicorn processes, under load and when stopped.

The shared stack (tests/stack_fixtures.py) runs `telekol server` exactly as `telekol demo`
does. Outcomes are counted, never timed: speed figures come from `telekol bench-http`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import socketio
from telekol.server.ops.supervisor import child_env, free_port, wait_for_health

from tests.stack_fixtures import LiveClient, Stack

pytestmark = pytest.mark.integration
REQUESTS, AT_ONCE = 400, 100  # CONTRACT section 7: at least 100 concurrent requests
NO_VERSION = re.compile(r"[A-Za-z][A-Za-z-]*")  # "gunicorn", never "gunicorn/27.0.1"


def bearer(token: str) -> dict[str, str]:
    """Return an Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def patient_of(stack: Stack, username: str) -> str:
    """Return the patient id of a patient user."""
    return str(stack.user(username)["patient"])


def test_hundreds_of_parallel_requests_from_one_patient_all_get_answers(stack: Stack) -> None:
    karen, nurse = stack.token("patient.karen"), stack.token("nurse.aalby")
    paths = ["/api/me/observations?code=spo2",
             f"/fhir/Patient/{patient_of(stack, 'patient.karen')}"]
    local = threading.local()

    def one(index: int) -> str:
        local.session = getattr(local, "session", None) or requests.Session()
        try:  # a stall shows as a timeout, counted like any other failure
            return str(local.session.get(stack.base_url + paths[index % 2],
                                         headers=bearer(karen), timeout=60).status_code)
        except requests.RequestException as error:
            return type(error).__name__

    nurse_answers: list[str] = []
    with ThreadPoolExecutor(AT_ONCE) as pool:
        flood = pool.map(one, range(REQUESTS))
        for _ in range(5):  # another user, while the patient's requests are in flight
            nurse_answers.append(str(requests.get(f"{stack.base_url}/api/patients",
                                                  headers=bearer(nurse), timeout=60).status_code))
        outcomes = Counter(flood)
    assert outcomes == Counter({"200": REQUESTS})
    assert nurse_answers == ["200"] * 5


def test_a_live_event_reaches_every_screen_whichever_process_holds_it(stack: Stack) -> None:
    device = stack.device(1)
    team = next(p for p in stack.fixture["patients"] if p["id"] == device["patient"])["care_team"]
    nurse = next(u["username"] for u in stack.fixture["users"] if u["organization"] == team[0])
    token = stack.token(nurse)
    screens = [LiveClient(stack, token=token) for _ in range(8)]  # spread over the workers
    body = {"msg_id": f"t-{uuid.uuid4().hex[:16]}",
            "taken_at": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
            "readings": [{"code": "spo2", "value": 84, "unit": "%"}]}
    try:
        assert stack.mosquitto_pub(device, json.dumps(body)).returncode == 0
        seen = [screen.next_observation(body["msg_id"]) for screen in screens]
    finally:
        for screen in screens:
            screen.close()
    assert len(seen) == len(screens)


@pytest.mark.parametrize("path", ["/healthz", "/login", "/api/patients", "/fhir/metadata",
                                  "/static/css/app.css", "/socket.io/?EIO=4&transport=polling"])
def test_the_server_header_names_no_version(stack: Stack, path: str) -> None:
    response = requests.get(stack.base_url + path, timeout=10)
    assert NO_VERSION.fullmatch(response.headers["Server"]), response.headers["Server"]


def test_the_websocket_handshake_names_no_server_version(stack: Stack) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                 f"Host: {stack.settings.http_host}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection((stack.settings.http_host, stack.settings.http_port),
                                  timeout=10) as conn:
        conn.sendall(handshake.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    servers = [line.split(":", 1)[1].strip() for line in lines
               if line.lower().startswith("server:")]
    assert all(NO_VERSION.fullmatch(value) for value in servers), servers


@pytest.fixture
def own_server(stack: Stack, tmp_path: Path):
    """Start a second `telekol server` on the stack's database; yield (process, url, log)."""
    settings = stack.settings.with_overrides(http_port=free_port())
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "telekol.server.ops.cli", "server"],
                                   env=child_env(settings), stdout=subprocess.PIPE,
                                   stderr=stderr)
    url = f"http://{settings.http_host}:{settings.http_port}"
    try:
        assert wait_for_health(f"{url}/healthz", time.monotonic() + 60)
        yield process, url, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_server_cleanly_with_live_screens_open(
        stack: Stack, own_server, signum: int) -> None:
    process, url, log = own_server
    token = stack.token("nurse.aalby")
    gone = threading.Event()
    live = socketio.Client(reconnection=False)
    live.on("disconnect", lambda *_: gone.set(), namespace="/live")
    live.connect(url, namespaces=["/live"], transports=["websocket"], auth={"token": token},
                 wait_timeout=10)
    assert requests.get(f"{url}/api/patients", headers=bearer(token), timeout=10).ok
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0
    assert gone.wait(10), "the live connection was not ended"
    stdout = process.stdout.read() if process.stdout else b""
    text = log.read_text()
    assert stdout == b"" and "Shutting down" in text
    assert re.search(r'INFO gunicorn\.access: 127\.0\.0\.1 "GET /api/patients" 200 \d+ \d+ms',
                     text)


def test_the_access_log_leaves_out_queries_and_masks_a_cpr_number_in_a_path(
        stack: Stack, own_server) -> None:
    process, url, log = own_server
    headers = bearer(stack.token("nurse.aalby"))
    for path in ("/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|0101011234",
                 "/fhir/Patient/010101-1234", "/api/patients/0101011234/observations"):
        requests.get(url + path, headers=headers, timeout=10)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    text = log.read_text()
    assert '"GET /fhir/Patient" 200' in text and '"GET /fhir/Patient/[cpr]" 404' in text
    assert '"GET /api/patients/[cpr]/observations" 404' in text
    assert "0101011234" not in text and "010101-1234" not in text
    assert "identifier" not in text
