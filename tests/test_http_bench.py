"""`telekol bench-http` in a short form, so the command cannot rot (figures are not checked).

Its own stack waits until the patient's uploaded readings are all stored, so a run that
returns proves the history went through the hub, the gateway and the API.
"""

from __future__ import annotations

import json

import pytest
from telekol.server.ops.bench.http import DEFAULT_PATH, measure, run_http_bench

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", [DEFAULT_PATH, "/fhir/Patient/{patient}"])
def test_the_benchmark_counts_every_answer_and_the_nurses(stack: Stack, path: str) -> None:
    report = measure(stack.base_url, stack.fixture, requests_total=30, concurrency=6,
                     path=path, timeout=60)
    assert (report["statuses"], report["failed"]) == ({"200": 30}, 0)
    assert "{patient}" not in report["path"] and report["nurse_statuses"].get("200", 0) >= 1
    assert report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]


def test_the_command_starts_its_own_stack_and_prints_one_json_document(capsys) -> None:
    assert run_http_bench(requests_total=10, concurrency=5, path=DEFAULT_PATH, database=None,
                          timeout=60, as_json=True, readings=6) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["database"], report["readings"], report["requests"], report["failed"]) == (
        "sqlite", 6, 10, 0)
    assert report["loadavg_before"] and report["loadavg_after"]
