"""`telekol bench-fhir` at a tiny size: the report, the loaded data and the answer checks."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from telekol.fhir.validation import validate_resource
from telekol.server.config import load_settings
from telekol.server.db import make_engine
from telekol.server.ops.bench.fhir import benchmark, fresh_database, load, measure
from telekol.server.web import create_app

from tests.conftest import BACKENDS

FIGURES = {"database", "observations", "patients", "load_seconds", "rows_per_second", "samples",
           "search_ms_p50", "search_ms_p95", "total_only_ms_p50", "total_only_ms_p95",
           "everything_ms_p50", "everything_ms_p95", "search_matches_mean",
           "everything_entries_mean", "everything_kib_p50", "wrong_answers"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_report_has_every_figure_and_the_server_answered_correctly(
        backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        report = benchmark(url, 2000, 10, tmp_path, samples=12)
    assert set(report) == FIGURES
    assert report["database"] == backend
    assert report["wrong_answers"] == 0
    # 2,000 readings over 2 years for 10 patients: ~200 each, ~7 SpO2 in the last 90 days.
    assert 150 < report["everything_entries_mean"] < 260
    assert 2 < report["search_matches_mean"] < 15


def test_the_loaded_rows_are_valid_observations_the_expected_answers_count(
        tmp_path: Path) -> None:
    with fresh_database(None, tmp_path) as url:
        engine = make_engine(url)
        dataset = load(engine, 2000, 10, random.Random(7))
        with engine.connect() as connection:
            per_patient = dict(connection.execute(text(
                "SELECT patient_id, count(*) FROM observation GROUP BY patient_id")).all())
            rows = connection.execute(text(
                "SELECT patient_id, type_code, effective, resource FROM observation")).all()
        engine.dispose()
    assert per_patient == dict(dataset.per_patient)
    assert sum(per_patient.values()) == 2000
    recent = [r for r in rows if r.type_code == "spo2"
              and datetime.fromisoformat(r.effective).replace(tzinfo=UTC) >= dataset.since]
    assert len(recent) == sum(dataset.in_window.values())
    assert {r.type_code for r in rows} == {"spo2", "pulse", "bp", "fev1", "temperature"}
    for row in rows[::97]:
        resource = validate_resource(json.loads(row.resource))
        assert resource["subject"]["reference"] == f"Patient/{row.patient_id}"


@pytest.mark.parametrize("expectation", ["in_window", "per_patient"])
def test_an_answer_that_differs_from_the_loaded_data_is_counted_wrong(
        expectation: str, tmp_path: Path) -> None:
    with fresh_database(None, tmp_path) as url:
        engine = make_engine(url)
        dataset = load(engine, 500, 3, random.Random(3))
        engine.dispose()
        for patient in dataset.patient_ids:  # expect one more reading than was stored
            getattr(dataset, expectation)[patient] += 1
        settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path)})
        app = create_app(settings.with_overrides(database_url=url), live=False)
        report = measure(app.test_client(), dataset, 6, random.Random(1))
        app.extensions["telekol"].engine.dispose()
    assert report["wrong_answers"] >= 6
