"""Several processes, one scrape (server/metrics_files.py).

Each process of a stack writes its metrics into `$TELEKOL_DATA_DIR/metrics/`; /metrics adds
them up. The processes here are real ones: small scripts, and the running stack's gateway
and gunicorn workers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from telekol.server import metrics_files
from telekol.server.config import load_settings

from tests.stack_fixtures import StatusListener

PRELUDE = """
import os, signal, sys
from telekol.server.config import load_settings
from telekol.server import metrics_files
metrics_files.use_folder(load_settings({"TELEKOL_DATA_DIR": sys.argv[1]}))
from telekol.server import metrics
"""


def start(data_dir: Path, body: str) -> subprocess.Popen[str]:
    """Start a Python process that chose the stack's metrics folder, then runs `body`."""
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code, str(data_dir)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def run(data_dir: Path, body: str) -> str:
    """Run a process like `start` to its end and return what it printed."""
    process = start(data_dir, body)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return out


def samples(text: str) -> dict[str, float]:
    """Return the unlabelled samples of an exposition by name."""
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if not s.labels}


SCRAPE = """
body, _type = metrics_files.exposition()
print(body.decode())
"""


def test_counters_add_up_across_processes_and_only_running_ones_keep_their_gauges(
        tmp_path) -> None:
    running = start(tmp_path, """
        metrics.GATEWAY_RECEIVED.inc(3); metrics.GATEWAY_QUEUE.set(5)
        print("ready", flush=True); sys.stdin.read()
    """)
    assert running.stdout is not None and running.stdout.readline().strip() == "ready"
    run(tmp_path, "metrics.GATEWAY_RECEIVED.inc(4); metrics.GATEWAY_QUEUE.set(2)")  # ends
    killed = start(tmp_path, """
        metrics.GATEWAY_RECEIVED.inc(1); metrics.GATEWAY_QUEUE.set(9)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed.wait(60)
    try:
        found = samples(run(tmp_path, SCRAPE))
    finally:
        running.communicate("", timeout=60)
    assert found["telekol_gateway_messages_received_total"] == 8  # 3 + 4 + 1: totals stay
    assert found["telekol_gateway_queue_depth"] == 5  # the running process's alone


def test_a_process_that_made_metrics_before_choosing_the_folder_is_stopped(tmp_path) -> None:
    code = ("import sys; from telekol.server import metrics, metrics_files; "
            "from telekol.server.config import load_settings; "
            "metrics_files.use_folder(load_settings({'TELEKOL_DATA_DIR': sys.argv[1]}))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "metrics were made before their folder was chosen" in done.stderr


def test_clearing_empties_the_folder_for_a_new_stack(tmp_path) -> None:
    run(tmp_path, "metrics.GATEWAY_RECEIVED.inc()")
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path)})
    assert list(metrics_files.folder(settings).glob("*.db"))
    metrics_files.clear(settings)
    assert not metrics_files.folder(settings).exists()


# --- the running stack ---------------------------------------------------------------------

def scrape_stack(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET the stack's /metrics and return every sample by name and labels."""
    response = requests.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(response.text) for s in f.samples}


@pytest.mark.integration
def test_one_scrape_of_the_stack_counts_the_gateways_work_and_every_web_workers_requests(
        stack) -> None:
    device = stack.device(3)
    before = scrape_stack(stack.base_url)
    metadata = ("telekol_http_request_seconds_count",
                (("method", "GET"), ("route", "/fhir/metadata"), ("status", "2xx")))
    listener = StatusListener(stack, device)
    msg_id = f"metrics-{uuid.uuid4().hex[:8]}"
    taken = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    try:
        stack.mosquitto_pub(device, f'{{"msg_id": "{msg_id}", "taken_at": "{taken}", '
                                    '"readings": [{"code": "spo2", "value": 95}]}')
        assert listener.wait_for(msg_id)["result"] == "accepted"
    finally:
        listener.close()
    for _ in range(12):  # new connections each: gunicorn hands them to either worker
        assert requests.get(f"{stack.base_url}/fhir/metadata", timeout=10).ok
    after = scrape_stack(stack.base_url)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # The gateway is its own process: these reach /metrics only through the folder.
    assert moved("telekol_gateway_messages_received_total") >= 1
    assert moved("telekol_ingest_statuses_total", result="accepted") >= 1
    assert moved("telekol_gateway_lag_seconds_count") >= 1
    assert after.get(metadata, 0.0) - before.get(metadata, 0.0) == 12
    # Each gunicorn worker keeps a pool of its own: the sizes add up over the workers.
    assert after[("telekol_db_pool_size", (("pool", "requests"),))] == (
        stack.settings.http_workers * stack.settings.http_db_connections)
    writers = {p.stem.rpartition("_")[2] for p in
               metrics_files.folder(stack.settings).glob("*.db")}
    assert len(writers) >= 1 + stack.settings.http_workers  # the gateway and each worker
