"""The project broker's policy, ACLs and durability, against a real Mosquitto 2.0."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
import pytest
from telekol.server.broker import mosquitto as broker_module
from telekol.server.config import Settings

from tests.broker_fixtures import (
    WAIT,
    Inbox,
    RunningBroker,
    connect_client,
    disconnect,
    make_settings,
    mosquitto_pub,
    publish,
    subscribe,
)

pytestmark = pytest.mark.integration

GATEWAY, SERVER = "telekol-gateway", "telekol-server"
INTERNAL = "telekol/v1/internal/"


def measurements(device_id: str) -> str:
    """Return a device's measurements topic."""
    return f"telekol/v1/devices/{device_id}/measurements"


def status(device_id: str) -> str:
    """Return a device's status topic."""
    return f"telekol/v1/devices/{device_id}/status"


def as_service(broker: RunningBroker, username: str, inbox: Inbox | None = None, **kw):
    """Connect one of the service accounts under its own name as client id, as the services do."""
    pw = broker.service_passwords[username]
    kw.setdefault("client_id", username)
    return connect_client(broker.settings, username, pw, on_message=inbox, **kw)


def as_device(broker: RunningBroker, device_id: str, inbox: Inbox | None = None, **kw):
    """Connect one of the test devices."""
    pw = broker.device_passwords[device_id]
    return connect_client(broker.settings, device_id, pw, on_message=inbox, **kw)


@pytest.fixture
def gateway(broker: RunningBroker):
    """Connect the gateway account, subscribed to every device's measurements."""
    inbox = Inbox()
    client = as_service(broker, GATEWAY, inbox)
    subscribe(client, measurements("+"))
    yield client, inbox
    disconnect(client)


# --- authentication ------------------------------------------------------------


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_anonymous_clients_are_refused(broker: RunningBroker, protocol) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect_client(broker.settings, None, None, protocol=protocol)
    assert mosquitto_pub(broker.settings, None, None, measurements("dev-a"), "{}").returncode


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("dev-a", "wrong"),
        ("dev-a", "dev-b-secret"),
        ("nobody", "dev-a-secret"),
        (GATEWAY, "dev-a-secret"),
    ],
)
def test_wrong_credentials_are_refused(broker: RunningBroker, username, password) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect_client(broker.settings, username, password)


def test_hash_password_output_is_accepted_by_the_broker(broker: RunningBroker) -> None:
    # The fixture's devices are hashed with hash_password, so this is the broker's verdict.
    done = mosquitto_pub(broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), "{}")
    assert done.returncode == 0, done.stderr


def test_hash_password_uses_mosquittos_pbkdf2_format_with_a_fresh_salt() -> None:
    first, second = broker_module.hash_password("pw"), broker_module.hash_password("pw")
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", first)
    assert first != second


# --- ACLs ------------------------------------------------------------------------


def test_device_publish_on_its_own_measurements_reaches_the_gateway(broker, gateway) -> None:
    _, inbox = gateway
    done = mosquitto_pub(broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), "m1")
    assert done.returncode == 0, done.stderr
    [message] = inbox.take(1)
    assert (message.topic, message.payload, message.qos) == (measurements("dev-a"), b"m1", 1)


def _publish_with_paho(broker: RunningBroker, messages: list[tuple[str, str]]) -> None:
    client = as_device(broker, "dev-a")
    for topic, payload in messages:  # one connection: the broker handles them in order
        publish(client, topic, payload)
    disconnect(client)


def _publish_with_cli(broker: RunningBroker, messages: list[tuple[str, str]]) -> None:
    for topic, payload in messages:  # each run ends after its PUBACK, so order holds
        mosquitto_pub(broker.settings, "dev-a", "dev-a-secret", topic, payload)


@pytest.mark.parametrize("publisher", [_publish_with_paho, _publish_with_cli])
def test_device_cannot_publish_under_another_device(broker, gateway, publisher) -> None:
    _, inbox = gateway
    publisher(broker, [(measurements("dev-b"), "forged"), (measurements("dev-a"), "sentinel")])
    received = inbox.until(measurements("dev-a"))
    assert [(m.topic, m.payload) for m in received] == [(measurements("dev-a"), b"sentinel")]


@pytest.mark.parametrize(
    "topic_filter",
    [
        "telekol/v1/devices/#",
        "#",
        "telekol/v1/devices/+/status",
        "telekol/v1/devices/dev-b/status",
        "telekol/v1/devices/dev-b/#",
    ],
)
def test_device_never_receives_another_devices_status(broker, topic_filter) -> None:
    inbox = Inbox()
    device = as_device(broker, "dev-a", inbox)
    codes = subscribe(device, topic_filter, status("dev-a"))
    assert not codes[1].is_failure
    gateway = as_service(broker, GATEWAY)
    publish(gateway, status("dev-b"), '{"msg_id": "b-1", "result": "accepted"}')
    publish(gateway, status("dev-a"), '{"msg_id": "sentinel", "result": "accepted"}')
    received = inbox.until(status("dev-a"))
    assert {m.topic for m in received} == {status("dev-a")}
    disconnect(gateway)
    disconnect(device)


@pytest.mark.parametrize("topic", [INTERNAL + "commands", INTERNAL + "alerts/new"])
def test_device_cannot_publish_internal_topics(broker: RunningBroker, topic) -> None:
    inbox = Inbox()
    server = as_service(broker, SERVER, inbox)
    subscribe(server, INTERNAL + "#")
    done = mosquitto_pub(broker.settings, "dev-a", "dev-a-secret", topic, "forged")
    assert "Not authorized" in done.stderr  # the v5 PUBACK says so
    gateway = as_service(broker, GATEWAY)
    publish(gateway, INTERNAL + "sentinel", "sentinel")
    received = inbox.until(INTERNAL + "sentinel")
    assert [m.payload for m in received] == [b"sentinel"]
    disconnect(gateway)
    disconnect(server)


def test_device_reusing_another_devices_client_id_gets_none_of_its_messages(broker) -> None:
    victim = as_device(broker, "dev-b", client_id="dev-b", clean_start=False, session_expiry=600)
    subscribe(victim, status("dev-b"))
    disconnect(victim)
    gateway = as_service(broker, GATEWAY)
    publish(gateway, status("dev-b"), "queued-for-dev-b")
    inbox = Inbox()
    intruder = as_device(broker, "dev-a", inbox, client_id="dev-b", clean_start=False)
    subscribe(intruder, status("dev-a"))
    publish(gateway, status("dev-a"), "sentinel")
    # A resumed dev-b session would deliver its queue right after CONNACK, before this.
    assert [m.payload for m in inbox.until(status("dev-a"))] == [b"sentinel"]
    disconnect(intruder)
    disconnect(gateway)
    # Leave no durable dev-b session behind for other tests.
    disconnect(as_device(broker, "dev-b", client_id="dev-b", clean_start=True))


# --- password file and reload ------------------------------------------------------


def test_device_added_while_running_can_connect_after_reload(broker: RunningBroker) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect_client(broker.settings, "dev-new", "dev-new-secret")
    broker.add_device("dev-new", "dev-new-secret")
    # reload() returns once the broker logged the reload, so the first attempt must work.
    disconnect(connect_client(broker.settings, "dev-new", "dev-new-secret"))


def test_reload_running_broker_signals_the_broker_in_the_pid_file(private_broker) -> None:
    settings = private_broker.settings
    devices = {**private_broker.device_passwords, "dev-ext": "dev-ext-secret"}
    broker_module.write_password_file(
        settings, [(d, broker_module.hash_password(p)) for d, p in devices.items()]
    )
    assert broker_module.reload_running_broker(settings)
    # Another process sent the signal: retry until CONNACK says yes, within a deadline.
    deadline = time.monotonic() + WAIT
    while True:
        try:
            disconnect(connect_client(settings, "dev-ext", "dev-ext-secret"))
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "new device never accepted after SIGHUP"


def test_reload_running_broker_is_false_without_a_live_broker(tmp_path) -> None:
    settings = make_settings(tmp_path)
    assert not broker_module.reload_running_broker(settings)
    # A stale pid file (broker crashed) must not make us signal some other process.
    exited = subprocess.Popen(["true"])
    exited.wait()
    settings.broker_dir.mkdir(parents=True)
    (settings.broker_dir / "mosquitto.pid").write_text(f"{exited.pid}\n")
    assert not broker_module.reload_running_broker(settings)


@pytest.mark.parametrize("device_id", ["telekol-gateway", "a/b", "+", "#", "x:y", "with space", ""])
def test_password_file_refuses_device_ids_that_would_widen_acls(tmp_path, device_id) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(ValueError):
        broker_module.write_password_file(settings, [(device_id, broker_module.hash_password("p"))])


def test_runtime_files_are_private(broker_settings: Settings, broker) -> None:
    for name in ("passwd", "acl", "service-accounts.json", "mosquitto.runtime.conf"):
        mode = stat.S_IMODE(os.stat(broker_settings.broker_dir / name).st_mode)
        assert mode == 0o600, name


def test_service_passwords_are_generated_once_even_concurrently(tmp_path) -> None:
    settings = make_settings(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(lambda _: broker_module.service_password(settings, GATEWAY), range(32)))
    assert len(seen) == 1
    assert broker_module.service_password(settings, GATEWAY) in seen
    with pytest.raises(KeyError):
        broker_module.service_password(settings, "dev-a")


# --- packet size -------------------------------------------------------------------


def test_payload_above_contract_limit_still_reaches_the_gateway(broker, gateway) -> None:
    _, inbox = gateway
    payload = b"x" * (300 * 1024)  # over 256 KiB: the gateway must see it to reject it
    done = mosquitto_pub(
        broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), stdin=payload
    )
    assert done.returncode == 0, done.stderr
    [message] = inbox.take(1)
    assert len(message.payload) == len(payload)


def test_packet_over_the_cap_is_refused_by_the_broker(broker, gateway) -> None:
    _, inbox = gateway
    topic = measurements("dev-a")
    huge = b"x" * (2 * 1024 * 1024)
    # v3.1.1: a v5 client would learn the cap from CONNACK and refuse to send.
    refused = mosquitto_pub(
        broker.settings, "dev-a", "dev-a-secret", topic, stdin=huge, protocol="mqttv311"
    )
    assert refused.returncode != 0
    mosquitto_pub(broker.settings, "dev-a", "dev-a-secret", topic, "sentinel")
    assert [m.payload for m in inbox.until(topic)] == [b"sentinel"]


# --- durability --------------------------------------------------------------------


def test_durable_gateway_session_gets_messages_queued_across_a_restart(private_broker) -> None:
    gateway = as_service(private_broker, GATEWAY, clean_start=False, session_expiry=3600)
    subscribe(gateway, measurements("+"))
    disconnect(gateway)
    sent = [f"m{i}" for i in range(5)]
    done = mosquitto_pub(
        private_broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), *sent
    )
    assert done.returncode == 0, done.stderr
    private_broker.restart()
    inbox = Inbox()
    gateway = as_service(private_broker, GATEWAY, inbox, clean_start=False, session_expiry=3600)
    assert [m.payload.decode() for m in inbox.take(len(sent))] == sent
    disconnect(gateway)


@pytest.mark.parametrize(
    ("protocol", "receive_maximum"), [(mqtt.MQTTv5, 200), (mqtt.MQTTv311, None)]
)
def test_unacked_messages_are_redelivered_after_the_gateway_reconnects(
    private_broker, protocol, receive_maximum
) -> None:
    durable = {
        "protocol": protocol,
        "clean_start": False,
        "session_expiry": 3600,
        "receive_maximum": receive_maximum,
        "manual_ack": True,
    }
    first = Inbox()
    crashed = as_service(private_broker, GATEWAY, first, **durable)
    subscribe(crashed, measurements("+"))
    sent = [f"m{i}" for i in range(150)]
    mosquitto_pub(private_broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), *sent)
    # All 150 arrive un-acked: the in-flight window is far above Mosquitto's default 20.
    assert [m.payload.decode() for m in first.take(len(sent))] == sent

    # A restarted gateway takes the session over without the old one ever acking.
    second = Inbox()
    restarted = as_service(private_broker, GATEWAY, second, **durable)
    crashed.loop_stop()
    redelivered = second.take(len(sent))
    assert [m.payload.decode() for m in redelivered] == sent
    assert all(m.dup for m in redelivered)
    for message in redelivered:
        restarted.ack(message.mid, message.qos)
    # Mosquitto reads one packet per socket per loop turn, and a takeover drops what it
    # has not read yet; a PUBACKed publish proves it has processed every ack before it.
    publish(restarted, status("dev-a"), "barrier")
    disconnect(restarted)

    third = Inbox()
    after_acks = as_service(private_broker, GATEWAY, third, **durable)
    mosquitto_pub(private_broker.settings, "dev-a", "dev-a-secret", measurements("dev-a"), "next")
    assert [m.payload for m in third.take(1)] == [b"next"]
    disconnect(after_acks)


def test_start_fails_loudly_when_the_port_is_taken(broker, tmp_path) -> None:
    clash = make_settings(tmp_path).with_overrides(mqtt_port=broker.settings.mqtt_port)
    broker_module.write_runtime_files(clash)
    with pytest.raises(broker_module.BrokerError, match="Address already in use"):
        broker_module.BrokerProcess(clash).start()
