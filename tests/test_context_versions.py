"""The rule inputs' version numbers: the readings counter is one compiled statement."""

from __future__ import annotations

from sqlmodel import Session
from telekol.server.alerts import context_versions


def test_counting_readings_compiles_one_statement_for_any_number_of_patients(
        engine, demo) -> None:
    patients = [p["id"] for p in demo["patients"]]
    cache: dict = {}
    cached = engine.execution_options(compiled_cache=cache)
    with Session(cached) as session:
        first = context_versions.count_readings(session, patients[:2])
        second = context_versions.count_readings(session, patients[:5])
        session.commit()
    assert first == dict.fromkeys(patients[:2], 1)
    assert second == {**dict.fromkeys(patients[:2], 2), **dict.fromkeys(patients[2:5], 1)}
    assert len(cache) == 1
