"""The demo hubs: what a session publishes where, and what they keep until a status arrives."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

from telekol.device_gateway.simulator import Hub, Simulator
from telekol.server.config import Settings
from telekol.server.demo.profiles import PROFILES
from telekol.server.demo.seed import demo_device_password

from tests.broker_fixtures import Inbox, RunningBroker, connect_client, disconnect, subscribe


class FakeClient:
    """Records what a hub publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.published.append((topic, payload))


def simulator(settings: Settings) -> Simulator:
    found = Simulator(settings, [("hub-0001", "0101419996"), ("hub-0002", "1503459995")], 300)
    for hub in found.hubs:
        hub.client = FakeClient()  # type: ignore[assignment]
    return found


def test_each_hub_speaks_for_its_own_patients_profile(settings: Settings) -> None:
    hubs = simulator(settings).hubs
    assert [h.profile.baseline for h in hubs] == [
        PROFILES["0101419996"].baseline, PROFILES["1503459995"].baseline]


def test_a_day_of_sessions_sends_measurements_and_the_diary_on_their_own_topics(
        settings: Settings) -> None:
    sim = simulator(settings)
    hub = sim.hubs[0]
    for _ in range(6):  # three compressed days: a session may be skipped, not all of them
        sim.measure(hub)
    topics = {topic for topic, _ in hub.client.published}  # type: ignore[union-attr]
    assert topics == {"telekol/v1/devices/hub-0001/measurements",
                      "telekol/v1/devices/hub-0001/questionnaire-responses"}


def test_a_hub_keeps_every_message_until_its_status_and_across_a_restart(
        settings: Settings) -> None:
    sim = simulator(settings)
    hub = sim.hubs[0]
    sim.measure(hub)
    sim.measure(hub)
    sent = [json.loads(body)["msg_id"] for _, body in hub.client.published]  # type: ignore[union-attr]
    again = Hub(hub.device_id, hub.profile, hub.store)
    again.load()
    assert sorted(again.pending) == sorted(sent)
    assert {again.topic(kind) for kind, _ in again.pending.values()} <= {
        "telekol/v1/devices/hub-0001/measurements",
        "telekol/v1/devices/hub-0001/questionnaire-responses"}


def test_a_hub_reads_a_pending_file_written_before_questionnaires(tmp_path: Path) -> None:
    store = tmp_path / "hub-0001.json"
    store.write_text(json.dumps({"m-1": '{"msg_id": "m-1"}'}))
    hub = Hub("hub-0001", PROFILES["0101419996"], store)
    hub.load()
    assert hub.pending == {"m-1": ("measurements", b'{"msg_id": "m-1"}')}


def test_a_message_left_unanswered_for_a_while_is_sent_again(settings: Settings) -> None:
    sim = simulator(settings)
    hub = sim.hubs[0]
    while not hub.pending:
        sim.measure(hub)
    client = hub.client
    first = len(client.published)  # type: ignore[union-attr]
    assert hub.send(older_than=60) == 0  # just sent: nothing is due yet
    waited = next(iter(hub.pending))
    hub.sent_at[waited] -= 61
    assert hub.send(older_than=60) == 1
    assert json.loads(client.published[-1][1])["msg_id"] == waited  # type: ignore[union-attr]
    assert len(client.published) == first + 1  # type: ignore[union-attr]


def test_the_spirometer_comes_once_a_compressed_week_while_the_patient_is_well(
        settings: Settings) -> None:
    sim = simulator(settings)
    hub = sim.hubs[1]
    for _ in range(28):  # two compressed weeks
        sim.measure(hub)
    spirometry = [json.loads(body)["msg_id"] for _, body in hub.client.published  # type: ignore[union-attr]
                  if json.loads(body)["msg_id"].endswith("-spiro")]
    assert 1 <= len(spirometry) <= 2


def test_the_hubs_use_the_tls_port_and_verify_the_broker_against_the_local_ca(
        private_broker: RunningBroker) -> None:
    private_broker.add_device("hub-0001", demo_device_password("hub-0001"))
    inbox = Inbox()
    gateway = connect_client(private_broker.settings, "telekol-gateway",
                             private_broker.service_passwords["telekol-gateway"],
                             on_message=inbox)
    subscribe(gateway, "telekol/v1/devices/+/measurements")
    sim = Simulator(private_broker.settings, [("hub-0001", "0101419996")], 300)
    sim.start()
    try:
        sim.measure(sim.hubs[0])
        arrived = inbox.take(1)[0]
        assert arrived.topic == "telekol/v1/devices/hub-0001/measurements"
        sock = sim.hubs[0].client.socket()  # type: ignore[union-attr]
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getpeername()[1] == private_broker.settings.mqtts_port
    finally:
        sim.stop()
        disconnect(gateway)
