"""`telekol bench-http`: many parallel requests from one patient's token against a real stack.

It starts a throw-away platform (broker, gateway, `telekol server` as `telekol demo` runs
it) on SQLite or PostgreSQL, gives the patient `--readings` SpO2 and pulse readings spread
over the last 30 days (through her hub and the gateway, as a backlog upload), sends
`--requests` requests `--concurrency` at a time with her bearer token, and meanwhile a nurse
asks for her patient list ten times a second. It
prints the outcomes by status, the latency percentiles and the nurse's answers; a request
counts as failed when it gets a 5xx or no answer within `--timeout` seconds. In `--path`,
`{patient}` stands for the patient's id (e.g. `/fhir/Patient/{patient}`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from telekol.server.broker.client import make_client
from telekol.server.broker.mosquitto import BrokerProcess
from telekol.server.config import Settings, load_settings
from telekol.server.device_messages.topics import measurements_topic
from telekol.server.ops.bench.fhir import fresh_database
from telekol.server.ops.bench.pipeline import percentile
from telekol.server.ops.supervisor import Part, child_env, free_port, prepare, wait_for_health

PATIENT, NURSE = "patient.karen", "nurse.aalby"
DEFAULT_PATH = "/api/me/observations?code=spo2"


def run_http_bench(*, requests_total: int, concurrency: int, path: str, database: str | None,
                   timeout: float, as_json: bool, readings: int = 120) -> int:
    """Start a private stack, load it and print the figures (a table or one JSON document)."""
    with tempfile.TemporaryDirectory(prefix="telekol-http-bench-") as tmp, \
            fresh_database(database, Path(tmp)) as url, ExitStack() as stack:
        base, fixture, settings = _start(url, tmp, stack)
        upload_history(base, settings, fixture, readings)
        load_before = _loadavg()
        report = measure(base, fixture, requests_total=requests_total, concurrency=concurrency,
                         path=path, timeout=timeout)
    report = {"database": url.split(":", 1)[0].split("+", 1)[0], "readings": readings, **report,
              "loadavg_before": load_before, "loadavg_after": _loadavg()}
    print(json.dumps(report) if as_json else "\n".join(
        f"{key:<22} {value}" for key, value in report.items()))
    return 0 if report["failed"] == 0 else 1


def _start(url: str, tmp: str, stack: ExitStack) -> tuple[str, dict[str, Any], Settings]:
    settings = load_settings({**os.environ, "TELEKOL_DATA_DIR": tmp,
                              "TELEKOL_DATABASE_URL": url,
                              "TELEKOL_HTTP_PORT": str(free_port()),
                              "TELEKOL_MQTT_PORT": str(free_port()),
                              "TELEKOL_MQTTS_PORT": str(free_port())})
    fixture = prepare(settings, 8)
    broker = stack.enter_context(BrokerProcess(settings))
    broker.start()
    env = child_env(settings)
    for part in (Part("gateway", ["gateway"]), Part("server", ["server"])):
        part.start(env)
        stack.callback(part.stop)
    base = f"http://{settings.http_host}:{settings.http_port}"
    if not wait_for_health(f"{base}/healthz", time.monotonic() + 60):
        raise RuntimeError("benchmark stack did not become healthy")
    return base, fixture, settings


def upload_history(base: str, settings: Settings, fixture: dict[str, Any], readings: int) -> None:
    """Publish `readings` measurements from the patient's hub over the last 30 days; wait."""
    karen = next(u["patient"] for u in fixture["users"] if u["username"] == PATIENT)
    device = next(d for d in fixture["devices"] if d["patient"] == karen)
    hub = make_client(f"{device['device_id']}-bench-{time.time_ns()}", device["mqtt_username"],
                      device["mqtt_password"])
    hub.connect(settings.mqtt_host, settings.mqtt_port)
    hub.loop_start()
    now, sent = datetime.now(UTC), []
    for index in range(readings):
        taken = now - timedelta(days=30) * (index + 1) / (readings + 1)
        body = {"msg_id": f"bench-http-{index}", "taken_at": taken.isoformat(timespec="seconds"),
                "readings": [{"code": "spo2", "value": 94 + index % 4, "unit": "%"},
                             {"code": "pulse", "value": 70 + index % 9}]}
        sent.append(hub.publish(measurements_topic(device["device_id"]), json.dumps(body), qos=1))
    for message in sent:
        message.wait_for_publish(30)
    hub.disconnect()
    hub.loop_stop()
    token, deadline = _token(base, fixture, PATIENT), time.monotonic() + 120
    while len(requests.get(base + DEFAULT_PATH, headers=_bearer(token), timeout=30).json()) < \
            readings:
        if time.monotonic() > deadline:
            raise RuntimeError("the patient's readings were not all stored within 120 s")
        time.sleep(0.2)


def measure(base: str, fixture: dict[str, Any], *, requests_total: int, concurrency: int,
            path: str, timeout: float) -> dict[str, Any]:
    """Send the load from the patient while the nurse asks now and then; return the figures."""
    patient, nurse = (_token(base, fixture, name) for name in (PATIENT, NURSE))
    karen = next(u["patient"] for u in fixture["users"] if u["username"] == PATIENT)
    path = path.replace("{patient}", karen)
    local = threading.local()

    def one(_index: int) -> tuple[str, float]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        try:
            status = str(session.get(base + path, headers=_bearer(patient),
                                     timeout=timeout).status_code)
        except requests.RequestException as error:
            status = type(error).__name__
        return status, (time.perf_counter() - started) * 1000

    for _ in range(3):  # warm up: first imports, templates, connections
        one(0)
    stop, nurse_ms = threading.Event(), list[tuple[str, float]]()
    watcher = threading.Thread(target=_nurse, args=(base, nurse, timeout, stop, nurse_ms))
    started = time.perf_counter()
    watcher.start()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests_total)))
    elapsed = time.perf_counter() - started
    stop.set()
    watcher.join()
    return _figures(results, elapsed, nurse_ms, requests_total, concurrency, path)


def _figures(results: list[tuple[str, float]], elapsed: float, nurse_ms: list[tuple[str, float]],
             total: int, concurrency: int, path: str) -> dict[str, Any]:
    statuses = Counter(status for status, _ in results)
    latencies = sorted(ms for _, ms in results)
    failed = sum(n for status, n in statuses.items() if not status.isdigit() or int(status) >= 500)
    nurse_latencies = sorted(ms for _, ms in nurse_ms)
    return {"path": path, "requests": total, "concurrency": concurrency,
            "statuses": dict(sorted(statuses.items())), "failed": failed,
            "p50_ms": round(percentile(latencies, 0.50)),
            "p95_ms": round(percentile(latencies, 0.95)),
            "p99_ms": round(percentile(latencies, 0.99)), "max_ms": round(latencies[-1]),
            "requests_per_s": round(total / elapsed, 1), "seconds": round(elapsed, 2),
            "nurse_statuses": dict(Counter(status for status, _ in nurse_ms)),
            "nurse_max_ms": round(nurse_latencies[-1]) if nurse_latencies else None}


def _nurse(base: str, token: str, timeout: float, stop: threading.Event,
           found: list[tuple[str, float]]) -> None:
    # Another user's ordinary request, every 0.1 s while the load runs, and once at least.
    while True:
        started = time.perf_counter()
        try:
            status = str(requests.get(f"{base}/api/patients", headers=_bearer(token),
                                      timeout=timeout).status_code)
        except requests.RequestException as error:
            status = type(error).__name__
        found.append((status, (time.perf_counter() - started) * 1000))
        if stop.wait(0.1):
            return


def _token(base: str, fixture: dict[str, Any], username: str) -> str:
    user = next(u for u in fixture["users"] if u["username"] == username)
    response = requests.post(f"{base}/api/auth/token", json={
        "username": username, "password": user["password"]}, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"
