"""Pytest plugin: a real project Mosquitto per test session, plus paho helpers."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from telekol.server.broker import mosquitto as broker_module
from telekol.server.config import Settings

DEVICE_PASSWORDS = {"dev-a": "dev-a-secret", "dev-b": "dev-b-secret"}
WAIT = 10.0  # seconds; generous because it only bounds a failing test


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(data_dir: Path) -> Settings:
    """Return settings for a broker of its own: own data dir, free ports, the policy file."""
    settings = Settings(data_dir=data_dir, mqtt_host="127.0.0.1", mqtt_port=free_port(),
                        mqtts_host="127.0.0.1", mqtts_port=free_port())
    # Same override as load_settings, so a policy variant can be tried against these tests.
    policy = os.environ.get("TELEKOL_MOSQUITTO_CONF")
    return settings.with_overrides(mosquitto_conf=Path(policy)) if policy else settings


@dataclass
class RunningBroker:
    """A started project broker and the credentials that work on it."""

    process: broker_module.BrokerProcess
    device_passwords: dict[str, str]
    service_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """Return the settings the broker was started with."""
        return self.process.settings

    def add_device(self, device_id: str, password: str) -> None:
        """Rewrite the password file with one more device and wait for the reload."""
        self.device_passwords[device_id] = password
        devices = [(d, broker_module.hash_password(p)) for d, p in self.device_passwords.items()]
        broker_module.write_password_file(self.settings, devices)
        self.process.reload()

    def restart(self) -> None:
        """Stop gracefully (persistence saved) and start again on the same port."""
        self.process.stop()
        self.process.start()


def start_broker(settings: Settings) -> RunningBroker:
    """Start a project broker with the two test devices."""
    devices = [(d, broker_module.hash_password(p)) for d, p in DEVICE_PASSWORDS.items()]
    broker_module.write_runtime_files(settings, devices)
    process = broker_module.BrokerProcess(settings)
    process.start()
    services = {
        n: broker_module.service_password(settings, n) for n in broker_module.SERVICE_ACCOUNTS
    }
    return RunningBroker(process, dict(DEVICE_PASSWORDS), services)


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with their own data dir and a free MQTT port."""
    return make_settings(tmp_path_factory.mktemp("broker"))


@pytest.fixture(scope="session")
def broker(broker_settings: Settings) -> Iterator[RunningBroker]:
    """A project broker shared by the session, with devices dev-a and dev-b."""
    running = start_broker(broker_settings)
    yield running
    running.process.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A broker of the test's own, for tests that restart or fill it."""
    running = start_broker(make_settings(tmp_path))
    yield running
    running.process.stop()


class Inbox:
    """Collect a client's messages into a queue, safely from paho's network thread."""

    def __init__(self) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()

    def __call__(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Receive one message (paho on_message signature)."""
        self.messages.put(message)

    def until(self, topic: str, timeout: float = WAIT) -> list[mqtt.MQTTMessage]:
        """Return the messages up to and including the first on `topic`."""
        seen: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1].topic != topic:
            seen.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
        return seen

    def take(self, count: int, timeout: float = WAIT) -> list[mqtt.MQTTMessage]:
        """Return the next `count` messages, failing if they do not all arrive in time."""
        deadline = time.monotonic() + timeout
        return [
            self.messages.get(timeout=max(0.0, deadline - time.monotonic())) for _ in range(count)
        ]


def connect_client(
    settings: Settings,
    username: str | None,
    password: str | None,
    *,
    client_id: str | None = None,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
    clean_start: bool = True,
    session_expiry: int | None = None,
    receive_maximum: int | None = None,
    manual_ack: bool = False,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
    tls: bool = False,
) -> mqtt.Client:
    """Connect a paho client, wait for CONNACK and raise ConnectionRefusedError on refusal."""
    v5 = protocol == mqtt.MQTTv5
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
        clean_session=None if v5 else clean_start,
        protocol=protocol,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    host, port = settings.mqtt_host, settings.mqtt_port
    if tls:  # the TLS listener, verifying the broker against the local CA
        client.tls_set(ca_certs=str(settings.ca_file))
        host, port = "127.0.0.1", settings.mqtts_port
    if on_message is not None:
        client.on_message = on_message
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        answered.set()

    def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.setdefault("reason", reason)
        answered.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    if v5:
        client.connect(
            host,
            port,
            clean_start=clean_start,
            properties=_connect_properties(session_expiry, receive_maximum),
        )
    else:
        client.connect(host, port)
    client.loop_start()
    if not answered.wait(WAIT) or outcome["reason"].is_failure or not client.is_connected():
        client.loop_stop()
        raise ConnectionRefusedError(f"{username}: {outcome.get('reason', 'no CONNACK')}")
    client.on_connect = client.on_disconnect = None
    return client


def _connect_properties(session_expiry: int | None, receive_maximum: int | None) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry is not None:
        props.SessionExpiryInterval = session_expiry
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return props


def subscribe(client: mqtt.Client, *topics: str, qos: int = 1) -> list[Any]:
    """Subscribe and return the broker's per-topic reason codes once SUBACK arrives."""
    acked = threading.Event()
    codes: list[Any] = []

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
        codes.extend(reasons)
        acked.set()

    client.on_subscribe = on_subscribe
    result, _ = client.subscribe([(topic, qos) for topic in topics])
    assert result == mqtt.MQTT_ERR_SUCCESS
    assert acked.wait(WAIT), "no SUBACK"
    return codes


def publish(client: mqtt.Client, topic: str, payload: bytes | str, qos: int = 1) -> None:
    """Publish and wait until the broker has acknowledged (QoS 1) or the packet left."""
    info = client.publish(topic, payload, qos=qos)
    info.wait_for_publish(WAIT)
    assert info.is_published(), f"no PUBACK for {topic}"


def disconnect(client: mqtt.Client) -> None:
    """Disconnect cleanly, once every queued packet (acks too) is sent, and stop the thread."""
    # loop_stop() alone ends the network thread without flushing what is queued.
    gone = threading.Event()
    client.on_disconnect = lambda *args: gone.set()
    if client.is_connected() and client.disconnect() == mqtt.MQTT_ERR_SUCCESS:
        assert gone.wait(WAIT), "no clean disconnect"
    client.loop_stop()


def mosquitto_pub(
    settings: Settings,
    username: str | None,
    password: str | None,
    topic: str,
    *messages: str,
    protocol: str = "mqttv5",
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Publish QoS 1 with the mosquitto_pub CLI; it exits only after every PUBACK."""
    args = ["mosquitto_pub", "-h", settings.mqtt_host, "-p", str(settings.mqtt_port)]
    args += ["-V", protocol, "-q", "1", "-t", topic]
    if username is not None:
        args += ["-u", username, "-P", password or ""]
    if stdin is not None:
        args += ["-s"]  # the whole of stdin is one message
    elif len(messages) == 1:
        args += ["-m", messages[0]]
    else:
        args += ["-l"]  # one message per line, all on one connection
        stdin = "".join(f"{m}\n" for m in messages).encode()
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=WAIT, check=False)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )
