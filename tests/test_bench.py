"""`telekol bench` in a short form: every scenario runs end to end and its report is JSON.

How fast it is belongs to the benchmark (README, "Benchmarks"); this proves it still runs,
keeps stdout to one JSON document, uses the database it was told and waits for every event.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PG

pytestmark = pytest.mark.integration

SCENARIOS = {
    "burst": ["--messages", "30"],
    "viewers": ["--messages", "10", "--viewers", "3"],
    "devices": ["--devices", "6", "--readings", "2"],
    "rest": ["--rest", "--patients", "6", "--history-days", "2", "--rate", "10",
             "--seconds", "1"],
}


def bench(*args: str, env: dict[str, str] | None = None) -> tuple[str, str, int]:
    """Run `telekol bench --json` with `args`; return stdout, stderr and the exit code."""
    done = subprocess.run([sys.executable, "-m", "telekol.server.ops.cli", "bench", "--json",
                           "--timeout", "60", *args], capture_output=True, text=True,
                          timeout=240, env=env, check=False)
    return done.stdout, done.stderr, done.returncode


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_prints_one_json_document_and_gets_every_event(scenario) -> None:
    stdout, stderr, code = bench(*SCENARIOS[scenario])
    report = json.loads(stdout)  # stdout holds the report alone: no banner, no log
    assert code == 0, stderr[-2000:]
    assert report["scenario"] == ("burst" if scenario == "viewers" else scenario)
    assert report["delivered"] == report["expected"] > 0
    assert report["database"]["backend"] == "sqlite"
    assert len(report["load_average"]["start"]) == 3


def test_the_burst_counts_every_event_of_every_viewer() -> None:
    stdout, _, _ = bench("--messages", "8", "--viewers", "2")
    report = json.loads(stdout)
    assert (report["viewers"], report["expected"], report["transport_expected"]) == (2, 8, 8)
    assert report["ratio"] is not None and report["rate"] > 0


@pytest.mark.skipif(not PG, reason="PostgreSQL is not reachable on 127.0.0.1:5432")
@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_bench_runs_on_postgresql_when_told_and_says_so(how) -> None:
    import os

    env = dict(os.environ)
    args = ["--messages", "10"]
    if how == "option":
        args += ["--database", "postgresql"]
    else:
        env["TELEKOL_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    stdout, stderr, code = bench(*args, env=env)
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["database"] == {"backend": "postgresql", "host": "127.0.0.1:5432"}
