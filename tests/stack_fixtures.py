"""A whole running platform for integration tests: broker, gateway and web server.

The gateway and the web server run as separate processes exactly as `telekol demo` runs
them; one stack per database backend per test session.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import socketio
from paho.mqtt.client import Client
from telekol.server.broker.client import device_endpoint, make_client, use_tls
from telekol.server.broker.mosquitto import BrokerProcess
from telekol.server.config import Settings, load_settings
from telekol.server.device_messages.topics import status_topic
from telekol.server.ops.supervisor import Part, child_env, free_port, prepare, wait_for_health

from tests.conftest import BACKENDS


@dataclass
class Stack:
    """A running platform and the demo fixture loaded into it."""

    settings: Settings
    fixture: dict[str, Any]
    broker: BrokerProcess
    parts: dict[str, Part] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """Return the web server's base URL."""
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def device(self, index: int = 0) -> dict[str, Any]:
        """Return the demo device at `index` with its patient."""
        return self.fixture["devices"][index]

    def user(self, username: str) -> dict[str, Any]:
        """Return a demo user by username."""
        return next(u for u in self.fixture["users"] if u["username"] == username)

    def token(self, username: str) -> str:
        """Log in over the API and return a bearer token."""
        user = self.user(username)
        response = requests.post(f"{self.base_url}/api/auth/token", json={
            "username": username, "password": user["password"]}, timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]

    def mosquitto_pub(self, device: dict[str, Any], payload: str | bytes,
                      topic: str | None = None, *, tls: bool = False,
                      ) -> subprocess.CompletedProcess[bytes]:
        """Publish with the real `mosquitto_pub` client at QoS 1 as `device` (`tls`: on the
        TLS port, verifying the broker against the local CA)."""
        topic = topic or f"telekol/v1/devices/{device['device_id']}/measurements"
        data = payload.encode() if isinstance(payload, str) else payload
        return subprocess.run(
            ["mosquitto_pub", *self.mosquitto_address(tls),
             "-u", device["mqtt_username"], "-P", device["mqtt_password"], "-q", "1",
             "-t", topic, "-s"], input=data, capture_output=True, timeout=20, check=False)

    def mosquitto_address(self, tls: bool) -> list[str]:
        """Return the mosquitto_pub/_sub options that reach the plain or the TLS listener."""
        if not tls:
            return ["-h", self.settings.mqtt_host, "-p", str(self.settings.mqtt_port)]
        return ["-h", "127.0.0.1", "-p", str(self.settings.mqtts_port),
                "--cafile", str(self.settings.ca_file)]


class StatusListener:
    """Receive a device's status messages (a second connection with its credentials)."""

    def __init__(self, stack: Stack, device: dict[str, Any], *, tls: bool = False) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        ready = threading.Event()
        self.client: Client = make_client(f"{device['device_id']}-listener-{time.time_ns()}",
                                          device["mqtt_username"], device["mqtt_password"])
        if tls:
            use_tls(self.client, stack.settings)
        self.client.on_connect = lambda c, *_: c.subscribe(status_topic(device["device_id"]), 1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put(json.loads(m.payload))
        self.client.connect(*device_endpoint(stack.settings, tls=tls))
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("status listener could not subscribe")

    def wait_for(self, msg_id: str | None, timeout: float = 20) -> dict[str, Any]:
        """Return the next status for `msg_id`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no status for {msg_id!r}")
            status = self.messages.get(timeout=remaining)
            if status.get("msg_id") == msg_id:
                return status

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class LiveClient:
    """A Socket.IO client on /live collecting events into queues."""

    def __init__(self, stack: Stack, token: str | None = None,
                 cookies: dict[str, str] | None = None) -> None:
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()
        self.observations: queue.Queue[dict[str, Any]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("alert", self.alerts.put, namespace="/live")
        self.sio.on("observation", self.observations.put, namespace="/live")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
        self.sio.connect(stack.base_url, namespaces=["/live"], transports=["websocket"],
                         auth={"token": token} if token else None,
                         headers=headers if cookies else {}, wait_timeout=10)

    def next_alert(self, patient_id: str, timeout: float = 20) -> dict[str, Any]:
        """Return the next alert for `patient_id`."""
        return _next(self.alerts, lambda a: a["patient"]["id"] == patient_id, timeout)

    def next_observation(self, msg_id: str, timeout: float = 20) -> dict[str, Any]:
        """Return the next observation event from message `msg_id`."""
        return _next(self.observations, lambda o: o["msg_id"] == msg_id, timeout)

    def close(self) -> None:
        """Disconnect."""
        self.sio.disconnect()


def _next(source: queue.Queue, wanted: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("expected event did not arrive")
        item = source.get(timeout=remaining)
        if wanted(item):
            return item


def start_stack(database_url: str, data_dir: str, patients: int = 8,
                before: Any = None) -> Stack:
    """Start broker, gateway and server on free ports and wait until healthy; `before`
    (settings, fixture) runs after seeding and before anything starts."""
    settings = load_settings({"TELEKOL_DATA_DIR": data_dir, "TELEKOL_DATABASE_URL": database_url,
                              "TELEKOL_HTTP_PORT": str(free_port()),
                              "TELEKOL_MQTT_PORT": str(free_port()),
                              "TELEKOL_MQTTS_PORT": str(free_port()),
                              "TELEKOL_AUDIT_KEY": os.environ["TELEKOL_AUDIT_KEY"]})
    fixture = prepare(settings, patients)
    if before is not None:
        before(settings, fixture)
    broker = BrokerProcess(settings)
    broker.start()
    stack = Stack(settings, fixture, broker)
    env = child_env(settings)
    for name in ("gateway", "server"):
        stack.parts[name] = Part(name, [name])
        stack.parts[name].start(env)
    if not wait_for_health(f"{stack.base_url}/healthz", time.monotonic() + 60):
        stop_stack(stack)
        raise RuntimeError("stack did not become healthy")
    return stack


def stop_stack(stack: Stack) -> None:
    """Stop the web server, the gateway and the broker."""
    for part in reversed(list(stack.parts.values())):
        part.stop()
    stack.broker.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request: pytest.FixtureRequest, database_factory,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Yield a running platform, once per database backend."""
    running = start_stack(database_factory(request.param),
                          str(tmp_path_factory.mktemp(f"stack-{request.param}")))
    yield running
    stop_stack(running)
