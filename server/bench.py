"""`telekol bench`: bare MQTT transport vs. the full pipeline, on a throw-away stack.

Transport: paho QoS 1 publish -> subscribe on the project broker.
Pipeline: a device publishes measurements -> gateway commits Observations -> the web
server pushes `observation` events -> a Socket.IO client receives them.
Both run in one invocation on the same machine and broker configuration.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import socketio
from paho.mqtt.client import Client
from telekol.device_gateway.mqtt import make_client
from telekol.device_gateway.topics import MEASUREMENTS_SUBSCRIPTION, measurements_topic
from telekol.server.broker import BrokerProcess, service_password
from telekol.server.config import load_settings
from telekol.server.seed import demo_device_password
from telekol.server.supervisor import Part, child_env, free_port, prepare, wait_for_health


@dataclass
class Run:
    """Send and receive times of one measured run."""

    sent: dict[str, float]
    received: dict[str, float]
    started: float
    finished: float

    @property
    def rate(self) -> float:
        """Return messages per second from the first send to the last receipt."""
        return len(self.received) / max(self.finished - self.started, 1e-9)

    def latencies_ms(self) -> list[float]:
        """Return each delivered message's latency in milliseconds."""
        return sorted((self.received[k] - self.sent[k]) * 1000 for k in self.received)


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def _connected(client: Client, host: str, port: int) -> Client:
    ready = threading.Event()
    client.on_connect = lambda *_: ready.set()
    client.max_inflight_messages_set(100)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not ready.wait(10):
        raise RuntimeError("could not connect to the benchmark broker")
    return client


def measure_transport(settings: Any, fixture: dict, messages: int) -> Run:
    """Time QoS 1 measurement messages from a device to the gateway's account, no processing."""
    device = fixture["devices"][0]
    received: dict[str, float] = {}
    done = threading.Event()
    subscribed = threading.Event()
    gateway = "telekol-gateway"  # the real path: same topic, accounts and ACLs
    sub = make_client(f"bench-transport-{time.time_ns()}", gateway,
                      service_password(settings, gateway))

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        received[json.loads(message.payload)["msg_id"]] = time.perf_counter()
        if len(received) >= messages:
            done.set()

    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    _connected(sub, settings.mqtt_host, settings.mqtt_port)
    sub.subscribe(MEASUREMENTS_SUBSCRIPTION, qos=1)
    subscribed.wait(10)
    pub = _connected(make_client(device["device_id"], device["device_id"],
                                 demo_device_password(device["device_id"])),
                     settings.mqtt_host, settings.mqtt_port)
    sent, started = _publish(pub, device["device_id"], messages, "transport")
    done.wait(120)
    finished = max(received.values(), default=time.perf_counter())
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return Run(sent, received, started, finished)


def _publish(pub: Client, device_id: str, messages: int, tag: str) -> tuple[dict, float]:
    run_id = int(time.time())
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for index in range(messages):
        msg_id = f"bench-{tag}-{run_id}-{index}"
        body = {"msg_id": msg_id, "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "readings": [{"code": "spo2", "value": 95 + index % 4, "unit": "%"},
                             {"code": "pulse", "value": 70 + index % 9}]}
        sent[msg_id] = time.perf_counter()
        pub.publish(measurements_topic(device_id), json.dumps(body).encode(), qos=1)
    return sent, started


def measure_pipeline(settings: Any, fixture: dict, messages: int) -> Run:
    """Publish measurements as a device and time the `observation` events a client gets."""
    device = fixture["devices"][0]
    nurse = _user_seeing(fixture, device["patient"])
    base = f"http://{settings.http_host}:{settings.http_port}"
    token = requests.post(f"{base}/api/auth/token", json={
        "username": nurse["username"], "password": nurse["password"]}, timeout=10
    ).json()["access_token"]
    received: dict[str, float] = {}
    done = threading.Event()
    sio = socketio.Client()

    @sio.on("observation", namespace="/live")
    def on_observation(data: dict[str, Any]) -> None:
        received[data["msg_id"]] = time.perf_counter()
        if len(received) >= messages:
            done.set()

    sio.connect(base, namespaces=["/live"], auth={"token": token}, transports=["websocket"])
    pub = _connected(make_client(device["device_id"], device["device_id"],
                                 demo_device_password(device["device_id"])),
                     settings.mqtt_host, settings.mqtt_port)
    sent, started = _publish(pub, device["device_id"], messages, "pipeline")
    done.wait(300)
    finished = max(received.values(), default=time.perf_counter())
    pub.disconnect()
    pub.loop_stop()
    sio.disconnect()
    return Run(sent, received, started, finished)


def _user_seeing(fixture: dict, patient_id: str) -> dict:
    patient = next(p for p in fixture["patients"] if p["id"] == patient_id)
    return next(u for u in fixture["users"] if u["organization"] in patient["care_team"])


def run_bench(*, messages: int, as_json: bool) -> int:
    """Start a private stack, run both measurements, print the figures."""
    with tempfile.TemporaryDirectory(prefix="telekol-bench-") as tmp, ExitStack() as stack:
        settings = load_settings({"TELEKOL_DATA_DIR": tmp, "TELEKOL_HTTP_PORT": str(free_port()),
                                  "TELEKOL_MQTT_PORT": str(free_port())})
        fixture = prepare(settings, 6)
        broker = stack.enter_context(BrokerProcess(settings))
        broker.start()
        # Transport first, before the gateway exists, so nothing else competes for the topic.
        transport = measure_transport(settings, fixture, messages)
        env = child_env(settings)
        for part in (Part("gateway", ["gateway"]), Part("server", ["server"])):
            part.start(env)
            stack.callback(part.stop)
        if not wait_for_health(f"http://{settings.http_host}:{settings.http_port}/healthz",
                               time.monotonic() + 60):
            print("benchmark stack did not become healthy", file=sys.stderr)
            return 1
        pipeline = measure_pipeline(settings, fixture, messages)
        report = _report(transport, pipeline, messages, Path(tmp))
    _print(report, as_json)
    return 0 if report["pipeline_delivered"] == messages else 1


def _report(transport: Run, pipeline: Run, messages: int, _tmp: Path) -> dict[str, Any]:
    lat = pipeline.latencies_ms()
    tlat = transport.latencies_ms()
    return {
        "messages": messages, "database": "sqlite (WAL)",
        "transport_rate": round(transport.rate, 1), "pipeline_rate": round(pipeline.rate, 1),
        "ratio": round(pipeline.rate / transport.rate, 3) if transport.rate else None,
        "latency_ms_p50": round(percentile(lat, 0.5), 1),
        "latency_ms_p99": round(percentile(lat, 0.99), 1),
        "transport_latency_ms_p50": round(percentile(tlat, 0.5), 1),
        "transport_latency_ms_p99": round(percentile(tlat, 0.99), 1),
        "transport_delivered": len(transport.received),
        "pipeline_delivered": len(pipeline.received),
        "latency_ms_mean": round(statistics.fmean(lat), 1) if lat else None,
    }


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(f"messages              {report['messages']}")
    print(f"transport (MQTT QoS1) {report['transport_rate']:>10.1f} msg/s   "
          f"p50 {report['transport_latency_ms_p50']} ms  "
          f"p99 {report['transport_latency_ms_p99']} ms")
    print(f"pipeline (to browser) {report['pipeline_rate']:>10.1f} msg/s   "
          f"p50 {report['latency_ms_p50']} ms  p99 {report['latency_ms_p99']} ms")
    print(f"ratio pipeline/transport {report['ratio']}")
