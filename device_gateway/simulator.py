"""Home hubs for the demo patients: realistic COPD readings with occasional worsening.

Each hub behaves like a real one: it keeps every measurement until it has seen a status
for its msg_id (persisted in the data dir) and re-sends the rest after reconnecting.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode
from sqlmodel import Session, select
from telekol.device_gateway.mqtt import make_client, session_properties
from telekol.device_gateway.topics import measurements_topic, status_topic
from telekol.server.config import Settings
from telekol.server.db import make_engine
from telekol.server.models import Device
from telekol.server.seed import demo_device_password

log = logging.getLogger("telekol.simulator")
PROGRESS_SECONDS = 10.0


@dataclass
class PatientState:
    """A simulated patient's baseline and whether they are worsening right now."""

    spo2: float
    pulse: float
    weight: float
    fev1: float
    worsening_left: int = 0

    def next_readings(self, rng: random.Random) -> list[dict[str, Any]]:
        """Return one measurement's readings, sometimes during an exacerbation."""
        if self.worsening_left == 0 and rng.random() < 0.04:
            self.worsening_left = rng.randint(4, 10)
        drop = 0.0
        if self.worsening_left:
            self.worsening_left -= 1
            drop = rng.uniform(3, 8)
        spo2 = min(100, round(self.spo2 - drop + rng.gauss(0, 0.8)))
        readings = [{"code": "spo2", "value": spo2, "unit": "%"},
                    {"code": "pulse", "value": round(self.pulse + drop * 2 + rng.gauss(0, 3)),
                     "unit": "/min"}]
        if rng.random() < 0.3:
            readings.append({"code": "weight", "value": round(self.weight + rng.gauss(0, .3), 1),
                             "unit": "kg"})
        if rng.random() < 0.2:
            systolic = round(135 + rng.gauss(0, 8))
            readings += [{"code": "bp_sys", "value": systolic, "unit": "mm[Hg]"},
                         {"code": "bp_dia", "value": round(systolic * .6 + rng.gauss(0, 4)),
                          "unit": "mm[Hg]"}]
        if rng.random() < 0.15:
            readings.append({"code": "fev1", "value": round(self.fev1 - drop / 20
                                                             + rng.gauss(0, .05), 2), "unit": "L"})
        return readings


@dataclass
class Hub:
    """One patient's hub: an MQTT client plus the measurements it has not seen answered."""

    device_id: str
    state: PatientState
    store: Path
    client: Client | None = None
    pending: dict[str, bytes] = field(default_factory=dict)
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Restore unanswered measurements from disk."""
        if self.store.exists():
            saved = json.loads(self.store.read_text())
            self.pending = {k: v.encode() for k, v in saved.items()}

    def save(self) -> None:
        """Persist unanswered measurements so a restart re-sends them."""
        tmp = self.store.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v.decode() for k, v in self.pending.items()}))
        tmp.replace(self.store)


class Simulator:
    """Drive a hub per demo device on a compressed schedule and report progress."""

    def __init__(self, settings: Settings, devices: list[str], interval: float,
                 seed: int | None = None) -> None:
        self.settings = settings
        self.interval = interval
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        folder = settings.data_dir / "simulator"
        folder.mkdir(parents=True, exist_ok=True)
        self.hubs = [Hub(d, self._baseline(), folder / f"{d}.json") for d in devices]

    def _baseline(self) -> PatientState:
        return PatientState(spo2=self.rng.uniform(92.5, 96), pulse=self.rng.uniform(68, 88),
                            weight=self.rng.uniform(55, 95), fev1=self.rng.uniform(0.9, 1.8))

    def start(self) -> None:
        """Connect every hub; each re-sends what it still holds once connected."""
        for hub in self.hubs:
            hub.load()
            hub.client = self._client(hub)
            hub.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                     keepalive=30, clean_start=False,
                                     properties=session_properties(24 * 3600))
            hub.client.loop_start()

    def stop(self) -> None:
        """Disconnect every hub; unanswered measurements stay on disk."""
        for hub in self.hubs:
            if hub.client is not None:
                hub.client.disconnect()
                hub.client.loop_stop()

    def run(self, stop: threading.Event) -> None:
        """Publish readings round-robin until `stop` is set."""
        last_report = time.monotonic()
        pause = self.interval / max(len(self.hubs), 1)
        while not stop.is_set():
            for hub in self.hubs:
                if stop.wait(pause):
                    break
                self.measure(hub)
            if time.monotonic() - last_report >= PROGRESS_SECONDS:
                self.report()
                last_report = time.monotonic()

    def measure(self, hub: Hub) -> str:
        """Take and send one measurement for `hub`; return its msg_id."""
        hub.seq += 1
        msg_id = f"{hub.device_id}-{int(time.time())}-{hub.seq}"
        body = {"msg_id": msg_id, "taken_at": datetime.now(UTC).astimezone().isoformat(
            timespec="seconds"), "readings": hub.state.next_readings(self.rng),
            "device": {"model": "TeleKOL demo hub", "firmware": "1.0",
                       "battery": self.rng.randint(40, 100)}}
        payload = json.dumps(body).encode()
        with hub.lock:
            hub.pending[msg_id] = payload
            hub.save()
        assert hub.client is not None
        hub.client.publish(measurements_topic(hub.device_id), payload, qos=1)
        self.counts["sent"] += 1
        return msg_id

    def report(self) -> None:
        """Print one progress line."""
        pending = sum(len(h.pending) for h in self.hubs)
        print(f"simulator: sent {self.counts['sent']}, accepted {self.counts['accepted']}, "
              f"duplicate {self.counts['duplicate']}, rejected {self.counts['rejected']}, "
              f"awaiting status {pending}", flush=True)

    def _client(self, hub: Hub) -> Client:
        client = make_client(hub.device_id, hub.device_id, demo_device_password(hub.device_id))

        def on_connect(c: Client, _u: Any, _f: ConnectFlags, reason: ReasonCode,
                       _p: Any) -> None:
            try:
                if reason.is_failure:
                    log.error("%s refused: %s", hub.device_id, reason)
                    return
                c.subscribe(status_topic(hub.device_id), qos=1)
                with hub.lock:
                    unanswered = list(hub.pending.values())
                for payload in unanswered:  # re-send what never got a status
                    c.publish(measurements_topic(hub.device_id), payload, qos=1)
            except Exception:
                log.exception("on_connect failed")

        def on_message(_c: Client, _u: Any, message: MQTTMessage) -> None:
            try:
                status = json.loads(message.payload)
                with hub.lock:
                    if hub.pending.pop(str(status.get("msg_id")), None) is not None:
                        hub.save()
                self.counts[str(status.get("result"))] += 1
            except Exception:
                log.exception("bad status message")

        client.on_connect = on_connect
        client.on_message = on_message
        return client


def demo_devices(settings: Settings, limit: int | None) -> list[str]:
    """Return the demo hubs' device ids (those provisioned by `telekol seed --demo`)."""
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        ids = session.exec(select(Device.id).where(Device.id.startswith("hub-"))  # type: ignore[attr-defined]
                           .order_by(Device.id)).all()
    engine.dispose()
    return list(ids[:limit] if limit else ids)


def run_simulator(settings: Settings, stop: threading.Event, *, interval: float = 3.0,
                  limit: int | None = None) -> int:
    """Run the simulator until `stop` is set."""
    devices = demo_devices(settings, limit)
    if not devices:
        print("simulator: no demo devices; run `telekol seed --demo` first", flush=True)
        return 1
    simulator = Simulator(settings, devices, interval)
    simulator.start()
    print(f"simulator: {len(devices)} hubs publishing every {interval:g} s", flush=True)
    try:
        simulator.run(stop)
    finally:
        simulator.stop()
        simulator.report()
    return 0
