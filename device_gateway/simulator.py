"""Home hubs for the demo patients: each patient's own readings, one worsening at a time.

Every hub measures on a compressed day (device_gateway/simulator_plan.py) with the values of
its patient's profile (server/demo/profiles.py), where the patient's 90-day demo history
ends; one patient at a time slowly worsens and recovers. Measurements go to `measurements`,
the symptom diary and the CAT to `questionnaire-responses` (docs/devices.md). Each hub
behaves like a real one: it keeps every message until it has seen a status for its msg_id
(persisted in the data dir) and re-sends the rest after reconnecting, and also when a
status has not come within RESEND_SECONDS (a repeat is answered "duplicate").
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode
from sqlmodel import Session, col, select
from telekol.device_gateway.simulator_plan import LIVE_FEV1_DAYS, WorseningPlan, pause, routine
from telekol.server.broker.client import (
    device_endpoint,
    make_client,
    session_properties,
    use_tls,
)
from telekol.server.config import Settings
from telekol.server.db import make_engine
from telekol.server.demo.profiles import HISTORY_DAYS, Profile, profile_for
from telekol.server.demo.readings import ANSWERS, session
from telekol.server.demo.seed import demo_device_password
from telekol.server.device_messages.topics import (
    measurements_topic,
    questionnaire_responses_topic,
    status_topic,
)
from telekol.server.models import Device, Patient

log = logging.getLogger("telekol.simulator")
PROGRESS_SECONDS = 10.0
DEFAULT_INTERVAL = 300.0  # seconds between a hub's sessions
DEFAULT_WORSEN_EVERY = 60.0  # minutes per patient's turn to worsen
RESEND_SECONDS = 60.0  # a message unanswered this long is sent again (a repeat is harmless)
TOPICS = {ANSWERS: questionnaire_responses_topic}


@dataclass
class Hub:
    """One patient's hub: an MQTT client plus the messages it has not seen answered."""

    device_id: str
    profile: Profile
    store: Path
    client: Client | None = None
    pending: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # msg_id: (kind, body)
    sent_at: dict[str, float] = field(default_factory=dict)  # msg_id: monotonic time last sent
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Restore unanswered messages from disk (a plain string is a measurement)."""
        if self.store.exists():
            saved = json.loads(self.store.read_text())
            self.pending = {k: (v["kind"], v["payload"].encode()) if isinstance(v, dict)
                            else ("measurements", v.encode()) for k, v in saved.items()}

    def save(self) -> None:
        """Persist unanswered messages so a restart re-sends them."""
        tmp = self.store.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: {"kind": kind, "payload": body.decode()}
                                   for k, (kind, body) in self.pending.items()}))
        tmp.replace(self.store)

    def topic(self, kind: str) -> str:
        """Return the topic this hub publishes `kind` messages to."""
        return TOPICS.get(kind, measurements_topic)(self.device_id)

    def send(self, older_than: float = 0.0) -> int:
        """(Re-)send every unanswered message last sent `older_than` seconds ago or earlier."""
        now = time.monotonic()
        with self.lock:
            due = [(msg_id, kind, body) for msg_id, (kind, body) in self.pending.items()
                   if now - self.sent_at.get(msg_id, -older_than) >= older_than]
            self.sent_at.update((msg_id, now) for msg_id, _, _ in due)
        assert self.client is not None
        for _, kind, body in due:
            self.client.publish(self.topic(kind), body, qos=1)
        return len(due)


class Simulator:
    """Drive a hub per demo device and report progress."""

    def __init__(self, settings: Settings, devices: list[tuple[str, str]], interval: float,
                 worsen_every: float = DEFAULT_WORSEN_EVERY, seed: int = 1,
                 tls: bool = True) -> None:
        self.settings = settings
        self.tls = tls  # as real hubs do: the TLS listener, the broker's certificate verified
        self.interval = interval
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        folder = settings.data_dir / "simulator"
        folder.mkdir(parents=True, exist_ok=True)
        # No isolated colds live: the plan's worsening is the only one (see simulator_plan).
        self.hubs = [Hub(d, replace(profile_for(cpr), odd_days=0.0), folder / f"{d}.json")
                     for d, cpr in devices]
        # Stable patients take the first turns: the others already have a story to show.
        self.plan = WorseningPlan.shuffled(
            [h.device_id for h in self.hubs], worsen_every * 60, seed=seed,
            first=frozenset(h.device_id for h in self.hubs if h.profile.archetype == "stable"))
        self.started = time.monotonic()

    def start(self) -> None:
        """Connect every hub; each re-sends what it still holds once connected."""
        for hub in self.hubs:
            hub.load()
            hub.client = self._client(hub)
            host, port = device_endpoint(self.settings, tls=self.tls)
            hub.client.connect_async(host, port, keepalive=30, clean_start=False,
                                     properties=session_properties(24 * 3600))
            hub.client.loop_start()

    def stop(self) -> None:
        """Disconnect every hub; unanswered messages stay on disk."""
        for hub in self.hubs:
            if hub.client is not None:
                hub.client.disconnect()
                hub.client.loop_stop()

    def run(self, stop: threading.Event) -> None:
        """Run each hub's sessions when they fall due until `stop` is set."""
        self.started = last_report = time.monotonic()
        spread = self.interval / max(len(self.hubs), 1)
        due = [(self.started + i * spread, i) for i in range(len(self.hubs))]
        while due and not stop.is_set():
            when, index = heapq.heappop(due)
            if stop.wait(max(0.0, when - time.monotonic())):
                break
            level = self.measure(self.hubs[index])
            heapq.heappush(due, (time.monotonic() + pause(self.interval, level, self.rng), index))
            if time.monotonic() - last_report >= PROGRESS_SECONDS:
                self.report()
                last_report = time.monotonic()

    def measure(self, hub: Hub) -> float:
        """Run one session on `hub` and send what it yields; return the worsening level."""
        level = self.plan.level(hub.device_id, time.monotonic() - self.started)
        slot, weekday = routine(hub.seq)
        hub.seq += 1
        prefix = f"{hub.device_id}-{int(time.time())}-{hub.seq}"
        messages = session(hub.profile, slot, datetime.now(UTC), weekday, HISTORY_DAYS, level,
                           self.rng, prefix, spacing=timedelta(0), fev1_days=LIVE_FEV1_DAYS)
        with hub.lock:
            hub.pending.update((body["msg_id"], (kind, json.dumps(body).encode()))
                               for kind, body in messages)
            hub.save()
        # Also what went unanswered for a while (say, sent before the gateway subscribed).
        hub.send(older_than=RESEND_SECONDS)
        self.counts["sent"] += len(messages)
        return level

    def report(self) -> None:
        """Print one progress line."""
        pending = sum(len(h.pending) for h in self.hubs)
        elapsed = time.monotonic() - self.started
        turn = self.plan.turn(elapsed)
        level = turn[1].level(elapsed) if turn else 0.0
        worsening = f", worsening {turn[0]} (level {level:.2f})" if turn and level > 0 else ""
        print(f"simulator: sent {self.counts['sent']}, accepted {self.counts['accepted']}, "
              f"duplicate {self.counts['duplicate']}, rejected {self.counts['rejected']}, "
              f"awaiting status {pending}{worsening}", flush=True)

    def _client(self, hub: Hub) -> Client:
        client = make_client(hub.device_id, hub.device_id, demo_device_password(hub.device_id))
        if self.tls:
            use_tls(client, self.settings)

        def on_connect(c: Client, _u: Any, _f: ConnectFlags, reason: ReasonCode,
                       _p: Any) -> None:
            try:
                if reason.is_failure:
                    log.error("%s refused: %s", hub.device_id, reason)
                    return
                c.subscribe(status_topic(hub.device_id), qos=1)
                hub.send()  # re-send what never got a status
            except Exception:
                log.exception("on_connect failed")

        def on_message(_c: Client, _u: Any, message: MQTTMessage) -> None:
            try:
                status = json.loads(message.payload)
                with hub.lock:
                    if hub.pending.pop(str(status.get("msg_id")), None) is not None:
                        hub.sent_at.pop(str(status.get("msg_id")), None)
                        hub.save()
                self.counts[str(status.get("result"))] += 1
            except Exception:
                log.exception("bad status message")

        client.on_connect = on_connect
        client.on_message = on_message
        return client


def demo_devices(settings: Settings, limit: int | None) -> list[tuple[str, str]]:
    """Return (device id, patient CPR) of the demo hubs (provisioned by `telekol seed --demo`)."""
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        rows = session.exec(select(Device.id, Patient.cpr).join(
            Patient, col(Patient.id) == col(Device.patient_id)).where(
            col(Device.id).startswith("hub-")).order_by(col(Device.id))).all()
    engine.dispose()
    found = [(device, cpr) for device, cpr in rows]
    return found[:limit] if limit else found


def run_simulator(settings: Settings, stop: threading.Event, *,
                  interval: float = DEFAULT_INTERVAL, worsen_every: float = DEFAULT_WORSEN_EVERY,
                  limit: int | None = None, seed: int = 1, tls: bool = True) -> int:
    """Run the simulator until `stop` is set."""
    devices = demo_devices(settings, limit)
    if not devices:
        print("simulator: no demo devices; run `telekol seed --demo` first", flush=True)
        return 1
    simulator = Simulator(settings, devices, interval, worsen_every, seed, tls=tls)
    simulator.start()
    host, port = device_endpoint(settings, tls=tls)
    print(f"simulator: {len(devices)} hubs on {host}:{port} ({'TLS' if tls else 'plain MQTT'}), "
          f"a session every {interval:g} s each; one patient at a time worsens, a new one "
          f"every {worsen_every:g} min", flush=True)
    try:
        simulator.run(stop)
    finally:
        simulator.stop()
        simulator.report()
    return 0
