"""Seeding the demo history: once per patient, enrolment before it, never in the test template."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, col, func, select
from telekol.server.config import load_settings
from telekol.server.db import make_engine, session_scope
from telekol.server.demo.history_seed import fresh_hubs, seed_demo_history
from telekol.server.demo.seed import seed_demo
from telekol.server.models import Alert, Consent, Episode, Observation, Patient, Threshold
from telekol.server.ops.cli import main

END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def observations(engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Observation)).one())


def test_the_test_template_has_no_history(engine) -> None:
    assert observations(engine) == 0
    assert len(fresh_hubs(engine)) == 8


def test_seeding_history_twice_adds_nothing(engine) -> None:
    first = seed_demo_history(engine, now=END, days=3)
    stored = observations(engine)
    with Session(engine) as session:
        alerts = len(session.exec(select(Alert)).all())
    assert first.uploads > 8 * 3 and stored > 8 * 3 * 4
    assert seed_demo_history(engine, now=END, days=3).uploads == 0
    assert observations(engine) == stored
    with Session(engine) as session:
        assert len(session.exec(select(Alert)).all()) == alerts


def test_enrolment_is_dated_before_the_first_reading(engine) -> None:
    seed_demo_history(engine, now=END, days=5)
    with Session(engine) as session:
        first = session.exec(select(func.min(Observation.effective))).one()
        latest = [session.exec(select(func.max(column))).one() for column in (
            Episode.started_at, Consent.recorded_at, Threshold.set_at)]
    assert all(moment <= first for moment in latest)


def test_extra_patients_get_a_short_history_of_morning_oximetry(engine) -> None:
    with session_scope(engine) as session:
        seed_demo(session, 10)
    seed_demo_history(engine, now=END, days=20, extra_days=3)
    with Session(engine) as session:
        extra = session.exec(select(Patient.id).where(col(Patient.given).startswith("Demo"))).all()
        rows = session.exec(select(Observation).where(col(Observation.patient_id).in_(extra)))
        kinds = {row.type_code for row in rows}
        days = session.exec(select(func.min(Observation.effective)).where(
            col(Observation.patient_id).in_(extra))).one()
    assert len(extra) == 2 and kinds == {"spo2", "pulse"}
    assert (END - days).days < 3


def test_seed_demo_json_prints_only_the_fixture_and_stores_the_history_once(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TELEKOL_DATA_DIR", str(tmp_path / "var"))
    outputs = []
    for _ in range(2):
        assert main(["seed", "--demo", "--json", "--history-days", "2"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1] and len(outputs[0]["patients"]) == 8
    engine = make_engine(load_settings().database_url)
    assert observations(engine) > 0 and fresh_hubs(engine) == []
    engine.dispose()
