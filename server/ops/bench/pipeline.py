"""`telekol bench`: bare MQTT transport against the full pipeline, on a throw-away stack.

One scenario per run:
- burst (default): `--messages N` objects (SpO2 + pulse) from one hub at once, watched by
  `--viewers K` clinicians of the patient's care team;
- devices: `--devices N` hubs, each sending `--readings R` objects of one reading, at once;
- rest: `--rest`: `--patients P` patients with `--history-days D` days of readings stored
  through the ingest service, then single readings at `--rate` per second for `--seconds`.

Transport: the same publishes to the gateway's account (same topics and ACLs) before any
gateway exists. Pipeline: hub -> broker -> gateway (commit) -> broker -> web server
(audit) -> Socket.IO clients, ending when every viewer has every `observation` event it
may see. The database is a new one: SQLite in a temporary folder, or on the PostgreSQL
server of `--database` or TELEKOL_DATABASE_URL (dropped afterwards). Standard output
carries the report alone; the servers' output and the log go to standard error.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import make_url
from telekol.server.broker.mosquitto import BrokerProcess
from telekol.server.config import load_settings
from telekol.server.ops.bench import clients
from telekol.server.ops.bench.fhir import fresh_database
from telekol.server.ops.bench.history import add_viewers, seed_history
from telekol.server.ops.supervisor import Part, child_env, free_port, prepare, wait_for_health

_BURST_CODES = (("spo2", 95.0), ("pulse", 70.0))
_DEVICE_READINGS = (("spo2", 94.0), ("pulse", 72.0), ("weight", 81.5), ("temperature", 36.8))


@dataclass(frozen=True)
class Options:
    """What to run (see `telekol bench --help`)."""

    messages: int = 2000
    viewers: int = 1
    devices: int | None = None
    readings: int = 4
    rest: bool = False
    patients: int = 500
    history_days: int = 14
    rate: float = 20.0
    seconds: float = 30.0
    database: str | None = None
    timeout: float = 300.0


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of sorted `values` (NaN when empty)."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def run_bench(options: Options, *, as_json: bool) -> int:
    """Run one scenario on a private stack; print the report (one JSON document)."""
    with _stdout_to_stderr() as stdout:
        started = os.getloadavg()
        report = _run(options)
        report["load_average"] = {"start": [round(x, 2) for x in started],
                                  "end": [round(x, 2) for x in os.getloadavg()]}
        _print(report, as_json, stdout)
    return 0 if report["delivered"] == report["expected"] else 1


@contextmanager
def _stdout_to_stderr() -> Iterator[TextIO]:
    """Point file descriptor 1 at standard error (children inherit it); yield the real one."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as real:
            yield real
            real.flush()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _run(options: Options) -> dict[str, Any]:
    target = options.database or os.environ.get("TELEKOL_DATABASE_URL")
    if target and target.startswith("sqlite"):
        target = "sqlite"  # a throw-away file, never the platform's own database
    patients = options.devices or (options.patients if options.rest else 6)
    with tempfile.TemporaryDirectory(prefix="telekol-bench-") as tmp, \
            fresh_database(target, Path(tmp)) as url, ExitStack() as stack:
        settings = load_settings({"TELEKOL_DATA_DIR": tmp, "TELEKOL_DATABASE_URL": url,
                                  "TELEKOL_HTTP_PORT": str(free_port()),
                                  "TELEKOL_MQTT_PORT": str(free_port()),
                                  "TELEKOL_MQTTS_PORT": str(free_port())})
        fixture = prepare(settings, max(patients, 6))
        if options.rest:
            seed_history(settings, fixture, options.history_days)
        users = add_viewers(settings, fixture, options.viewers) if not (
            options.devices or options.rest) else _one_per_organisation(fixture)
        broker = stack.enter_context(BrokerProcess(settings))
        broker.start()
        stack.callback(broker.stop)
        scenario = _devices if options.devices else _rest if options.rest else _burst
        report = scenario(options, settings, fixture, users, stack)
        report["database"] = _describe(url)
        return report


def _start_platform(settings: Any, stack: ExitStack) -> str:
    # A port chosen now: the hubs' connections may have taken the one chosen at the start.
    settings = settings.with_overrides(http_port=free_port())
    env = child_env(settings)
    for part in (Part("gateway", ["gateway"]), Part("server", ["server"])):
        part.start(env)
        stack.callback(part.stop)
    base = f"http://{settings.http_host}:{settings.http_port}"
    if not wait_for_health(f"{base}/healthz", time.monotonic() + 120):
        raise RuntimeError("the benchmark stack did not become healthy")
    return base


def _burst(options: Options, settings: Any, fixture: dict, users: list[dict],
           stack: ExitStack) -> dict[str, Any]:
    device = fixture["devices"][0]["device_id"]
    plan = [(device, f"burst-{i}", _BURST_CODES) for i in range(options.messages)]
    transport = _transport(settings, plan, options.timeout)
    viewers = clients.watch(_start_platform(settings, stack), users)
    stack.callback(clients.close_all, viewers)
    pipeline = _pipeline(settings, plan, viewers, fixture, options.timeout)
    return {"scenario": "burst", "messages": options.messages, "viewers": len(viewers),
            **_compare(transport, pipeline)}


def _devices(options: Options, settings: Any, fixture: dict, users: list[dict],
             stack: ExitStack) -> dict[str, Any]:
    hubs = [d["device_id"] for d in fixture["devices"][:options.devices]]
    plan = [(hub, f"dev-{hub}-{r}", (_DEVICE_READINGS[r % len(_DEVICE_READINGS)],))
            for r in range(options.readings) for hub in hubs]
    transport = _transport(settings, plan, options.timeout)
    viewers = clients.watch(_start_platform(settings, stack), users)
    stack.callback(clients.close_all, viewers)
    pipeline = _pipeline(settings, plan, viewers, fixture, options.timeout)
    return {"scenario": "devices", "devices": len(hubs), "readings_per_device": options.readings,
            "viewers": len(viewers), **_compare(transport, pipeline)}


def _rest(options: Options, settings: Any, fixture: dict, users: list[dict],
          stack: ExitStack) -> dict[str, Any]:
    viewers = clients.watch(_start_platform(settings, stack), users)
    stack.callback(clients.close_all, viewers)
    count = max(1, round(options.rate * options.seconds))
    rng = random.Random(1)
    hubs = [d["device_id"] for d in fixture["devices"]]
    plan = [(rng.choice(hubs), f"rest-{i}", (("spo2", float(rng.randint(93, 97))),))
            for i in range(count)]
    pipeline = _pipeline(settings, plan, viewers, fixture, options.timeout,
                         interval=1 / options.rate)
    return {"scenario": "rest", "patients": len(fixture["patients"]),
            "history_days": options.history_days, "rate_offered": options.rate,
            "messages": count, "viewers": len(viewers), **_figures("", pipeline)}


@dataclass
class Timed:
    """Send times and, per message, when its last event (or the message) arrived."""

    sent: dict[str, float]
    arrived: dict[str, float]
    expected: int

    def rate(self) -> float:
        """Return messages per second, first send to last arrival."""
        if not self.arrived or not self.sent:
            return 0.0
        return len(self.arrived) / max(max(self.arrived.values()) - min(self.sent.values()),
                                       1e-9)

    def latencies(self) -> list[float]:
        """Return each arrived message's latency in milliseconds, sorted."""
        return sorted((self.arrived[m] - self.sent[m]) * 1000 for m in self.arrived)


def _transport(settings: Any, plan: list[tuple[str, str, Any]], timeout: float) -> Timed:
    sink = clients.TransportSink(settings, len(plan))
    hubs = clients.Hubs(settings, {hub for hub, _, _ in plan})
    for hub, msg_id, readings in plan:
        hubs.publish(hub, f"t-{msg_id}", clients.body(f"t-{msg_id}", readings))
    sink.done.wait(timeout)
    hubs.close()
    sink.close()
    return Timed(hubs.sent, dict(sink.received), len(plan))


def _pipeline(settings: Any, plan: list[tuple[str, str, Any]], viewers: list[clients.Viewer],
              fixture: dict, timeout: float, interval: float = 0.0) -> Timed:
    seeing = {d["device_id"]: set(next(p for p in fixture["patients"]
                                       if p["id"] == d["patient"])["care_team"])
              for d in fixture["devices"]}
    for viewer in viewers:
        viewer.expect((msg_id, code) for hub, msg_id, readings in plan for code, _ in readings
                      if viewer.organization in seeing[hub])
    hubs = clients.Hubs(settings, {hub for hub, _, _ in plan})
    started = time.perf_counter()
    for index, (hub, msg_id, readings) in enumerate(plan):
        if interval:
            time.sleep(max(0.0, started + index * interval - time.perf_counter()))
        hubs.publish(hub, msg_id, clients.body(msg_id, readings))
    clients.wait_all(viewers, time.monotonic() + timeout)
    hubs.close()
    arrived = {}
    for hub, msg_id, readings in plan:
        times = [v.received.get((msg_id, code)) for v in viewers if v.organization in seeing[hub]
                 for code, _ in readings]
        if times and None not in times:
            arrived[msg_id] = max(t for t in times if t is not None)
    return Timed(hubs.sent, arrived, len(plan))


def _compare(transport: Timed, pipeline: Timed) -> dict[str, Any]:
    return {**_figures("transport_", transport), **_figures("", pipeline),
            "ratio": round(pipeline.rate() / transport.rate(), 3) if transport.rate() else None}


def _figures(prefix: str, run: Timed) -> dict[str, Any]:
    latencies = run.latencies()
    found = {"rate": round(run.rate(), 1),
             **{f"latency_ms_p{round(share * 100)}": percentile(latencies, share)
                if latencies else None for share in (0.5, 0.95, 0.99)},
             "latency_ms_max": latencies[-1] if latencies else None,
             "delivered": len(run.arrived), "expected": run.expected}
    return {f"{prefix}{key}": round(value, 1) if isinstance(value, float) else value
            for key, value in found.items()}


def _one_per_organisation(fixture: dict) -> list[dict]:
    seen: dict[str, dict] = {}
    for user in fixture["users"]:
        if user["organization"] and user["role"] != "patient":
            seen.setdefault(user["organization"], user)
    return list(seen.values())


def _describe(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"backend": "sqlite", "journal": "WAL", "synchronous": "FULL"}
    return {"backend": "postgresql", "host": f"{parsed.host}:{parsed.port or 5432}"}


def _print(report: dict[str, Any], as_json: bool, stdout: TextIO) -> None:
    if as_json:
        print(json.dumps(report), file=stdout)
        return
    for key, value in report.items():
        print(f"{key:<28} {value}", file=stdout)


def options_from(args: Any) -> Options:
    """Return the Options of parsed command-line arguments."""
    return Options(messages=args.messages, viewers=args.viewers, devices=args.devices,
                   readings=args.readings, rest=args.rest, patients=args.patients,
                   history_days=args.history_days, rate=args.rate, seconds=args.seconds,
                   database=args.database, timeout=args.timeout)

