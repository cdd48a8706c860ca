"""Several `telekol gateway` processes against one broker and one database, for the tests.

A `Platform` runs the project broker, any number of gateway processes and optionally the web
server, all with a short gateway lease so that a takeover fits in a test. `Hub` is a device
that sends at a steady pace and re-sends every reading until it has seen its status, as the
contract asks of devices.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paho.mqtt.client import Client, MQTTMessage
from sqlalchemy import text
from sqlalchemy.engine import Engine
from telekol.server.broker.client import make_client
from telekol.server.broker.mosquitto import BrokerProcess
from telekol.server.config import Settings, load_settings
from telekol.server.db import make_engine
from telekol.server.device_messages.topics import measurements_topic, status_topic
from telekol.server.ingest.lease import roster
from telekol.server.ops.supervisor import Part, child_env, free_port, prepare

LEASE_SECONDS = 2


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Return the condition's first true value, checking every 0.1 s; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Platform:
    """A broker, gateway processes and perhaps the web server on one database."""

    settings: Settings
    fixture: dict[str, Any]
    broker: BrokerProcess
    env: dict[str, str]
    engine: Engine
    gateways: list[Part] = field(default_factory=list)
    server: Part | None = None

    @property
    def base_url(self) -> str:
        """Return the web server's base URL."""
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def start_gateway(self) -> Part:
        """Start one more `telekol gateway` process."""
        part = Part(f"gateway-{len(self.gateways) + 1}", ["gateway"])
        part.start(self.env)
        self.gateways.append(part)
        return part

    def kill(self, part: Part) -> None:
        """SIGKILL a gateway process, as a crash would end it."""
        assert part.process is not None
        part.process.send_signal(signal.SIGKILL)
        part.process.wait()

    def running(self) -> list[Part]:
        """Return the gateway processes still alive."""
        return [p for p in self.gateways if p.process is not None and p.process.poll() is None]

    def holder(self) -> tuple[Part, int] | None:
        """Return the gateway process holding a live lease and connected, with its epoch."""
        with self.engine.connect() as connection:
            now, lease, beats = roster(connection)
        if lease is None or lease.holder is None or lease.expires_at <= now:
            return None
        if not any(b.instance == lease.holder and b.connected for b in beats):
            return None
        pid = int(lease.holder.split("-")[0])
        part = next((p for p in self.running() if p.process and p.process.pid == pid), None)
        return (part, int(lease.epoch)) if part is not None else None

    def standbys(self) -> int:
        """Return how many gateways beat as standby."""
        with self.engine.connect() as connection:
            now, _lease, beats = roster(connection)
        return sum(1 for b in beats if b.role == "standby" and now - b.beat_at < LEASE_SECONDS)

    def broker_log(self) -> str:
        """Return everything the broker logged so far."""
        return self.broker.log_path.read_text()

    def stop(self) -> None:
        """Stop the web server, every gateway and the broker."""
        for part in ([self.server] if self.server else []) + self.gateways:
            part.stop()
        self.broker.stop()
        self.engine.dispose()


def start_platform(database_url: str, data_dir: str, *, gateways: int,
                   server: bool = False) -> Platform:
    """Seed the database, start the broker, `gateways` gateway processes and the server."""
    settings = load_settings({"TELEKOL_DATA_DIR": data_dir, "TELEKOL_DATABASE_URL": database_url,
                              "TELEKOL_HTTP_PORT": str(free_port()),
                              "TELEKOL_MQTT_PORT": str(free_port()),
                              "TELEKOL_MQTTS_PORT": str(free_port())})
    fixture = prepare(settings, 8)
    broker = BrokerProcess(settings)
    broker.start()
    env = child_env(settings) | {"TELEKOL_GATEWAY_LEASE_SECONDS": str(LEASE_SECONDS)}
    platform = Platform(settings, fixture, broker, env, make_engine(database_url))
    for _ in range(gateways):
        platform.start_gateway()
    if server:
        platform.server = Part("server", ["server"])
        platform.server.start(env)
    return platform


def measurement(msg_id: str, retain: bool = False) -> bytes:
    """Return one valid measurement object as JSON."""
    return json.dumps({"msg_id": msg_id, "taken_at": datetime.now(UTC).isoformat(),
                       "readings": [{"code": "spo2", "value": 96, "unit": "%"},
                                    {"code": "pulse", "value": 72}]}).encode()


class Hub:
    """A device that keeps each reading until it sees its status, re-sending it meanwhile."""

    def __init__(self, settings: Settings, device: dict[str, Any], answered: threading.Condition,
                 resend_after: float = 3.0) -> None:
        self.device_id = device["device_id"]
        self.answered = answered
        self.resend_after = resend_after
        self.pending: dict[str, tuple[bytes, float]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.sent = 0
        self.resent = 0
        self.lock = threading.Lock()
        self.client: Client = make_client(f"{self.device_id}-hub-{uuid.uuid4().hex[:8]}",
                                          device["mqtt_username"], device["mqtt_password"])
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError(f"{self.device_id} could not subscribe to its status")

    def send_new(self) -> None:
        """Take and send one new reading."""
        msg_id = f"{self.device_id}-{self.sent:05d}"
        payload = measurement(msg_id)
        with self.lock:
            self.pending[msg_id] = (payload, time.monotonic())
            self.sent += 1
        self.client.publish(measurements_topic(self.device_id), payload, qos=1)

    def resend_overdue(self) -> None:
        """Send again every reading whose status is overdue."""
        now = time.monotonic()
        with self.lock:
            overdue = [(m, p) for m, (p, at) in self.pending.items()
                       if now - at > self.resend_after]
            for msg_id, payload in overdue:
                self.pending[msg_id] = (payload, now)
        for _msg_id, payload in overdue:
            self.resent += 1
            self.client.publish(measurements_topic(self.device_id), payload, qos=1)

    def unanswered(self) -> int:
        """Return how many readings still wait for a status."""
        with self.lock:
            return len(self.pending)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Client, *_: Any) -> None:
        client.subscribe(status_topic(self.device_id), 1)
        with self.lock:  # after a reconnect, everything unanswered goes again
            self.pending = {m: (p, 0.0) for m, (p, _at) in self.pending.items()}

    def _on_message(self, _c: Client, _u: Any, message: MQTTMessage) -> None:
        status = json.loads(message.payload)
        with self.lock:
            self.statuses.setdefault(status["msg_id"], []).append(status)
            self.pending.pop(status["msg_id"], None)
        with self.answered:
            self.answered.notify_all()


def stored_counts(engine: Engine) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Return ledger rows and Observations per (device, msg_id)."""
    with engine.connect() as connection:
        ledger = connection.execute(text(
            "SELECT device_id, msg_id, COUNT(*) FROM inboundmessage GROUP BY device_id, msg_id"))
        rows = {(d, m): int(n) for d, m, n in ledger}
        observations = connection.execute(text(
            "SELECT device_id, msg_id, COUNT(*) FROM observation GROUP BY device_id, msg_id"))
        return rows, {(d, m): int(n) for d, m, n in observations}
