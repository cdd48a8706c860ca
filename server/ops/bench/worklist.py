"""`telekol bench-worklist`: the work list in a real browser with many patients, under load.

A private stack (broker, gateway, web server) on free ports in a temporary directory, with
N demo patients, a day of readings each and a share of them red or yellow. Debian's Chromium
(Playwright, as in the browser tests) logs in as a municipal nurse and measures:

- first rows: from submitting the login form until the first work-list row is on screen;
- live: while hubs of patients on the first page publish readings at a steady rate, the time
  from each publish until the patient's row was redrawn, how many row requests the page made,
  and the browser's long tasks (main thread busy over 50 ms).

Figures, not a test: the machine's load shows in them, so quote them with the load average.
Needs the development dependencies (`make install` has them) and Debian's `chromium`.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from telekol.server.broker.client import make_client
from telekol.server.broker.mosquitto import BrokerProcess
from telekol.server.config import Settings, load_settings
from telekol.server.db import make_engine
from telekol.server.demo.seed import demo_device_password
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.device_messages.topics import measurements_topic
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.ops.bench.pipeline import percentile
from telekol.server.ops.supervisor import Part, child_env, free_port, prepare, wait_for_health

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
NURSE = "nurse.aalby"
# Collect the browser's long tasks and the moments rows were swapped in, from page start.
PROBE = """
window.__longTasks = [];
new PerformanceObserver((list) => list.getEntries().forEach(
  (e) => window.__longTasks.push([e.startTime, e.duration]))).observe({entryTypes: ["longtask"]});
window.__rowsAt = {};
document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("worklist");
  if (!table) return;
  new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => {
    if (n.dataset && n.dataset.patient) (window.__rowsAt[n.dataset.patient] ||= []).push(
      performance.timeOrigin + performance.now());
  }))).observe(table, {childList: true});
});
"""


def seed_history(settings: Settings, fixture: dict[str, Any], seed: int = 1) -> None:
    """Give every patient a day of readings through the ingest service; a quarter turn
    yellow or red, so the work list has something to sort."""
    rng = random.Random(seed)
    engine = make_engine(settings.database_url)
    service = IngestService(engine)
    now = datetime.now(UTC)
    batch = []
    for index, device in enumerate(fixture["devices"]):
        last = rng.choice([85, 90, 91]) if rng.random() < 0.25 else rng.randint(93, 97)
        body = [{"msg_id": f"hist-{index}-{k}",
                 "taken_at": (now - timedelta(hours=6 * (3 - k), minutes=5)).isoformat(),
                 "readings": [{"code": "spo2", "value": last if k == 3 else rng.randint(93, 97)},
                              {"code": "pulse", "value": rng.randint(62, 92)}]}
                for k in range(4)]
        raw = json.dumps(body).encode()
        batch.append(ParsedDelivery(measurements_topic(device["device_id"]),
                                    device["device_id"], now, parse_measurements(raw, now), raw))
        if len(batch) == 50:
            service.ingest(batch)
            batch = []
    if batch:
        service.ingest(batch)
    engine.dispose()


def first_rows(browser: Any, base: str, password: str) -> dict[str, Any]:
    """Log in in a fresh context; time the first row and return what the page held."""
    context = browser.new_context(locale="da-DK", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(f"{base}/login")
    page.fill("#username", NURSE)
    page.fill("#password", password)
    started = time.perf_counter()
    page.click("main form button[type=submit]")
    page.locator("#worklist tbody").first.wait_for(state="visible", timeout=60_000)
    shown = (time.perf_counter() - started) * 1000
    page.locator('#live-state[data-state="live"]').wait_for(timeout=60_000)
    live = (time.perf_counter() - started) * 1000
    found = page.evaluate("""() => ({rows: document.querySelectorAll('#worklist tbody').length,
        bytes: document.documentElement.outerHTML.length,
        longest: Math.max(0, ...window.__longTasks.map(t => t[1]))})""")
    return {"page": page, "context": context, "first_rows_ms": round(shown),
            "live_ms": round(live), **found}


def live_phase(settings: Settings, fixture: dict[str, Any], page: Any, *, seconds: float,
               rate: float) -> dict[str, Any]:
    """Publish readings for patients on the page's rows; time each row's redraw."""
    on_page = page.eval_on_selector_all("#worklist tbody",
                                        "rows => rows.map(r => r.dataset.patient)")
    devices = [d for d in fixture["devices"] if d["patient"] in set(on_page)][:20]
    clients = []
    for device in devices:
        client = make_client(f"bench-{device['device_id']}", device["device_id"],
                             demo_device_password(device["device_id"]))
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=30)
        client.loop_start()
        clients.append((client, device))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/worklist/rows" in r.url else None)
    page.evaluate("window.__longTasks = []")
    rng = random.Random(2)
    sent: list[tuple[str, float]] = []
    started = time.time()
    for index in range(int(seconds * rate)):
        client, device = clients[index % len(clients)]
        body = {"msg_id": f"live-{index}", "taken_at": datetime.now(UTC).isoformat(),
                "readings": [{"code": "spo2", "value": rng.choice([84, 90, 95, 96])},
                             {"code": "pulse", "value": rng.randint(62, 110)}]}
        sent.append((device["patient"], time.time()))
        client.publish(measurements_topic(device["device_id"]), json.dumps(body), qos=1)
        threading.Event().wait(max(0.0, started + (index + 1) / rate - time.time()))
    page.wait_for_timeout(3000)  # let the last redraws land before reading the clocks
    redrawn = page.evaluate("window.__rowsAt")
    for client, _device in clients:
        client.disconnect()
        client.loop_stop()
    latencies = sorted(_latencies(sent, redrawn))
    tasks = page.evaluate("window.__longTasks")
    return {"seconds": seconds, "rate": rate, "published": len(sent),
            "rows_redrawn": len(latencies),
            "update_ms_p50": round(percentile(latencies, 0.5)) if latencies else None,
            "update_ms_p95": round(percentile(latencies, 0.95)) if latencies else None,
            "row_requests": len(requests), "long_tasks": len(tasks),
            "long_task_ms_max": round(max((t[1] for t in tasks), default=0))}


def _latencies(sent: list[tuple[str, float]], redrawn: dict[str, list[float]]) -> list[float]:
    """Pair each publish with the first redraw of its row after it (ms)."""
    found = []
    for patient, at in sent:
        after = [moment / 1000 for moment in redrawn.get(patient, []) if moment / 1000 >= at]
        if after:
            found.append((min(after) - at) * 1000)
    return found


def run_worklist_bench(*, patients: int, seconds: float, rate: float, runs: int,
                       as_json: bool) -> int:
    """Start a private stack with `patients` patients and measure the work list."""
    from playwright.sync_api import sync_playwright  # a development dependency

    with tempfile.TemporaryDirectory(prefix="telekol-wl-bench-") as tmp, ExitStack() as stack:
        settings = load_settings({"TELEKOL_DATA_DIR": tmp, "TELEKOL_HTTP_PORT": str(free_port()),
                                  "TELEKOL_MQTT_PORT": str(free_port()),
                                  "TELEKOL_MQTTS_PORT": str(free_port())})
        seeded = time.perf_counter()
        fixture = prepare(settings, patients)
        seed_history(settings, fixture)
        seeding = time.perf_counter() - seeded
        broker = stack.enter_context(BrokerProcess(settings))
        broker.start()
        env = child_env(settings)
        for part in (Part("gateway", ["gateway"]), Part("server", ["server"])):
            part.start(env)
            stack.callback(part.stop)
        base = f"http://{settings.http_host}:{settings.http_port}"
        if not wait_for_health(f"{base}/healthz", time.monotonic() + 60):
            raise RuntimeError("benchmark stack did not become healthy")
        password = next(u["password"] for u in fixture["users"] if u["username"] == NURSE)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            loads = [first_rows(browser, base, password) for _ in range(runs)]
            live = live_phase(settings, fixture, loads[-1]["page"], seconds=seconds, rate=rate)
            browser.close()
    visible = sum("muni-aalby" in p["care_team"] for p in fixture["patients"])
    report = {"patients": patients, "visible_to_nurse": visible,
              "seeding_s": round(seeding, 1),
              "first_rows_ms": [load["first_rows_ms"] for load in loads],
              "first_rows_ms_median": statistics.median(load["first_rows_ms"] for load in loads),
              "live_after_ms": [load["live_ms"] for load in loads],
              "rows_on_page": loads[-1]["rows"], "page_chars": loads[-1]["bytes"],
              "load_long_task_ms_max": max(load["longest"] for load in loads), "live": live}
    print(json.dumps(report) if as_json else json.dumps(report, indent=2))
    return 0
