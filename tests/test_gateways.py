"""Several gateways at once (CONTRACT §7): one consumes, none takes another's session,
/healthz names one that stopped, and a chaos run stores every reading exactly once."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from paho.mqtt.client import MQTTMessage
from sqlalchemy import text
from telekol.server.broker.client import make_client
from telekol.server.device_messages.envelope import RETAINED_REASON
from telekol.server.device_messages.topics import measurements_topic, status_topic

from tests.conftest import PG
from tests.gateway_fixtures import (
    Hub,
    Platform,
    measurement,
    start_platform,
    stored_counts,
    wait_until,
)

pytestmark = pytest.mark.integration
TAKEOVER = "already connected, closing old connection"


def gateway_connections(platform: Platform) -> int:
    """Return how often a gateway connected to the broker so far."""
    return sum("u'telekol-gateway'" in line and "New client connected" in line
               for line in platform.broker_log().splitlines())


class Device:
    """A device's own connection: publish (optionally retained) and read its statuses."""

    def __init__(self, platform: Platform, index: int) -> None:
        self.info = platform.fixture["devices"][index]
        self.statuses: queue.Queue[dict] = queue.Queue()
        subscribed = threading.Event()
        self.client = make_client(f"{self.info['device_id']}-t-{time.time_ns()}",
                                  self.info["mqtt_username"], self.info["mqtt_password"])
        self.client.on_connect = lambda c, *_: c.subscribe(status_topic(self.info["device_id"]),
                                                           1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(platform.settings.mqtt_host, platform.settings.mqtt_port)
        self.client.loop_start()
        assert subscribed.wait(10), "the device could not subscribe to its status"

    def send(self, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self.client.publish(measurements_topic(self.info["device_id"]), payload, qos=1,
                                   retain=retain)
        info.wait_for_publish(10)

    def statuses_until(self, msg_id: str, timeout: float = 30) -> list[dict]:
        """Return every status received up to and including the first for `msg_id`."""
        seen = [self.statuses.get(timeout=timeout)]
        while seen[-1]["msg_id"] != msg_id:
            seen.append(self.statuses.get(timeout=timeout))
        return seen

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, _c: object, _u: object, message: MQTTMessage) -> None:
        self.statuses.put(json.loads(message.payload))


@pytest.fixture
def sqlite_platform(database_factory, tmp_path) -> Iterator[Platform]:
    """Two gateways and the web server on SQLite (one host)."""
    platform = start_platform(database_factory("sqlite"), str(tmp_path), gateways=2, server=True)
    yield platform
    platform.stop()


def health(platform: Platform) -> tuple[int, dict]:
    """Return /healthz's status code and body (None while the server is not up)."""
    try:
        response = requests.get(f"{platform.base_url}/healthz", timeout=5)
    except requests.RequestException:  # not up yet, or busy starting
        return 0, {}
    return response.status_code, response.json()


def test_a_second_gateway_stands_by_and_healthz_names_one_that_stopped(
        sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    wait_until(lambda: health(platform)[0] == 200, 60, "/healthz to say ok")
    # Both gateways are up: one on standby, or (before the lease) both fighting for a session.
    wait_until(lambda: platform.standbys() == 1 or TAKEOVER in platform.broker_log(), 20,
               "the other gateway to stand by")
    device = Device(platform, 0)
    try:
        for number in range(3):
            device.send(measurement(f"two-{number}"))
            assert device.statuses_until(f"two-{number}")[-1]["result"] == "accepted"
        # Only the lease holder ever connected: no session was taken over.
        assert TAKEOVER not in platform.broker_log()
        assert gateway_connections(platform) == 1
        active, _epoch = wait_until(platform.holder, 20, "a gateway to hold the lease")
        standby = next(p for p in platform.running() if p is not active)
        platform.kill(standby)
        def unhealthy() -> dict | None:
            code, body = health(platform)
            return body if code == 503 else None

        body = wait_until(unhealthy, 30, "/healthz to report the killed gateway")
        assert body["failing"] == ["gateway"]
        assert "stopped consuming: no heartbeat for" in body["gateway"]
        # The active gateway carries on, and a restarted gateway takes the dead one's slot.
        device.send(measurement("two-after"))
        assert device.statuses_until("two-after")[-1]["result"] == "accepted"
        platform.start_gateway()
        wait_until(lambda: health(platform)[0] == 200, 30, "/healthz to say ok again")
    finally:
        device.close()


def test_a_retained_message_is_rejected_once_and_never_replayed_after_a_restart(
        sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    wait_until(lambda: health(platform)[0] == 200, 60, "/healthz to say ok")
    device = Device(platform, 1)
    try:
        device.send(measurement("kept-1"), retain=True)
        (answer,) = device.statuses_until("kept-1")
        assert answer == {"msg_id": "kept-1", "result": "rejected", "errors": [RETAINED_REASON]}
        for _ in range(2):  # every gateway restarts (and subscribes again), twice over
            for part in platform.running():
                part.stop()
            platform.start_gateway()
            wait_until(lambda: health(platform)[0] == 200, 30, "the new gateway to consume")
            device.send(measurement("kept-sentinel"))
            seen = device.statuses_until("kept-sentinel")
            assert [s["msg_id"] for s in seen] == ["kept-sentinel"]
    finally:
        device.close()
    with platform.engine.connect() as connection:
        kept = connection.execute(text(
            "SELECT COUNT(*) FROM quarantinedmessage WHERE msg_id = 'kept-1'")).scalar_one()
        stored = connection.execute(text(
            "SELECT COUNT(*) FROM inboundmessage WHERE msg_id = 'kept-1'")).scalar_one()
    assert (kept, stored) == (1, 0)


def test_a_paused_active_that_lost_the_lease_wakes_up_on_standby_and_stores_nothing(
        sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    wait_until(lambda: platform.standbys() == 1, 60, "a gateway on standby")
    old, epoch = wait_until(platform.holder, 20, "a gateway to hold the lease")
    device = Device(platform, 2)
    assert old.process is not None
    try:
        old.process.send_signal(signal.SIGSTOP)  # paused: no renewal, its connection stays open
        new, new_epoch = wait_until(lambda: (lambda h: h if h and h[1] > epoch else None)(
            platform.holder()), 20, "the standby to take the lease")
        device.send(measurement("paused-1"))
        assert device.statuses_until("paused-1")[-1]["result"] == "accepted"
        old.process.send_signal(signal.SIGCONT)
        # Awake, the old holder finds the lease gone and stands by; the new one keeps it.
        wait_until(lambda: platform.standbys() == 1, 20, "the woken gateway to stand by")
        for number in range(2, 6):
            device.send(measurement(f"paused-{number}"))
            assert device.statuses_until(f"paused-{number}")[-1]["result"] == "accepted"
        assert platform.holder() == (new, new_epoch)
    finally:
        if old.process is not None and old.process.poll() is None:
            old.process.send_signal(signal.SIGCONT)
        device.close()
    _ledger, observations = stored_counts(platform.engine)
    assert {m: n for (_d, m), n in observations.items() if m.startswith("paused-")} == {
        f"paused-{n}": 2 for n in range(1, 6)}  # SpO2 and pulse, once each


# --- chaos --------------------------------------------------------------------------------

HUBS = 4
MESSAGES = 1200  # in all, 300 per hub at 10 a second each
PACE = 0.1


@pytest.mark.skipif(not PG, reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_chaos_two_gateways_one_killed_three_times_and_the_broker_once_lose_nothing(
        database_factory, tmp_path) -> None:
    started = time.monotonic()
    platform = start_platform(database_factory("postgresql"), str(tmp_path), gateways=2)
    answered = threading.Condition()
    hubs: list[Hub] = []
    stop = threading.Event()
    kills, epochs = 0, []
    try:
        wait_until(platform.holder, 60, "a gateway to hold the lease")
        wait_until(lambda: platform.standbys() == 1, 20, "the other gateway to stand by")
        hubs = [Hub(platform.settings, platform.fixture["devices"][i], answered)
                for i in range(HUBS)]
        driver = threading.Thread(target=_drive, args=(hubs, stop), daemon=True)
        driver.start()

        def statuses() -> int:
            return sum(len(h.statuses) for h in hubs)

        def await_statuses(more: int) -> None:
            target = statuses() + more
            with answered:
                assert answered.wait_for(lambda: statuses() >= target, 30), (
                    f"statuses stalled at {statuses()} (wanted {target})")

        for round_ in range(3):
            await_statuses(150)
            wait_until(lambda: platform.standbys() == 1, 30, "a gateway on standby")
            active, epoch = platform.holder() or (None, 0)
            assert active is not None, "no gateway holds the lease"
            epochs.append(epoch)
            platform.kill(active)
            kills += 1
            # The standby takes over within a lease period; statuses flow again.
            wait_until(lambda e=epoch: (platform.holder() or (None, e))[1] > e, 20,
                       "the standby to take the lease")
            await_statuses(50)
            platform.start_gateway()
            if round_ == 1:
                platform.broker.kill()  # a crash: no snapshot saved
                platform.broker.start()
        with answered:
            assert answered.wait_for(lambda: all(h.sent == MESSAGES // HUBS and not h.unanswered()
                                                 for h in hubs), 60), (
                f"{sum(h.unanswered() for h in hubs)} readings never got a status")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for hub in hubs:
            hub.close()
        platform.stop()
    ledger, observations = stored_counts(platform.engine)
    sent = {(h.device_id, f"{h.device_id}-{n:05d}") for h in hubs for n in range(h.sent)}
    lost = [key for key in sent if ledger.get(key, 0) == 0]
    duplicated = [key for key in sent if ledger.get(key, 0) > 1 or observations.get(key) != 2]
    results = {s["result"] for h in hubs for answers in h.statuses.values() for s in answers}
    figures = {"sent": len(sent), "stored": sum(1 for key in sent if key in ledger),
               "re_sent": sum(h.resent for h in hubs), "duplicates": len(duplicated),
               "lost": len(lost), "gateway_kills": kills, "broker_kills": 1,
               "epochs": epochs, "seconds": round(elapsed, 1)}
    print(f"\nchaos figures: {json.dumps(figures)}")
    assert len(sent) == MESSAGES
    assert lost == [] and duplicated == []
    assert results <= {"accepted", "duplicate"}
    assert all(h.statuses.keys() >= {m for d, m in sent if d == h.device_id} for h in hubs)
    assert TAKEOVER not in platform.broker_log()


def _drive(hubs: list[Hub], stop: threading.Event) -> None:
    """Send at a steady pace until every hub has sent its share; re-send what is overdue."""
    share = MESSAGES // len(hubs)
    while not stop.is_set():
        for hub in hubs:
            if hub.sent < share:
                hub.send_new()
            hub.resend_overdue()
        stop.wait(PACE)
