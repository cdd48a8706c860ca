"""Replaying a history: stored at its own times, its alerts answered and resolved as in life."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select
from telekol.server.demo.history import history
from telekol.server.demo.profiles import PROFILES
from telekol.server.demo.readings import TIMEZONE
from telekol.server.demo.replay import HistoryReplay, next_working_time, response_time
from telekol.server.models import (
    Alert,
    AlertTransition,
    InboundMessage,
    InboxItem,
    Observation,
    User,
)

END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
JORGEN = "0911509997"  # the exacerbation archetype; Bøstrup's 3-minute red escalation


def patient_of(demo: dict, cpr: str) -> str:
    return next(p["id"] for p in demo["patients"] if p["cpr"] == cpr)


@pytest.fixture
def replayed(engine, demo) -> tuple:
    """Replay the last three weeks of Jørgen's hub: the exacerbation and the recovery."""
    device = next(d["device_id"] for d in demo["devices"]
                  if d["patient"] == patient_of(demo, JORGEN))
    summary = HistoryReplay(engine, END).run(history(PROFILES[JORGEN], device, END, 21))
    with Session(engine) as session:
        alerts = session.exec(select(Alert).where(
            Alert.patient_id == patient_of(demo, JORGEN)).order_by(col(Alert.id))).all()
    return summary, alerts


def test_every_reading_is_stored_with_the_time_it_arrived(engine, demo, replayed) -> None:
    with Session(engine) as session:
        inbound = session.exec(select(InboundMessage)).all()
        observations = session.exec(select(Observation)).all()
    assert inbound and all(END - timedelta(days=21) < m.received_at <= END for m in inbound)
    assert all(timedelta(0) <= o.issued - o.effective < timedelta(minutes=10)
               for o in observations)


def test_the_exacerbation_raises_red_and_yellow_alerts_when_it_happened(replayed) -> None:
    _, alerts = replayed
    rules = {(a.rule, a.severity) for a in alerts}
    assert ("symptoms", "red") in rules
    assert {"threshold:spo2", "baseline:spo2-below-baseline"} <= {a.rule for a in alerts}
    assert min(a.created_at for a in alerts if a.severity == "red") < END - timedelta(days=10)


def test_the_nurse_acknowledges_and_the_scheduler_resolves_what_has_gone_quiet(
        engine, replayed) -> None:
    summary, alerts = replayed
    settled = [a for a in alerts if a.updated_at < END - timedelta(hours=25)]
    assert settled and summary.alerts == len(alerts)
    for alert in settled:
        assert alert.status == "resolved" and alert.resolution == "automatic"
        assert alert.created_at < alert.acknowledged_at < alert.resolved_at <= END
    with Session(engine) as session:
        actions = {t.action for t in session.exec(select(AlertTransition))}
        nurse = session.get(User, settled[0].acknowledged_by)
    assert {"created", "acknowledged", "auto-resolved"} <= actions
    assert nurse is not None and nurse.role in ("nurse", "doctor")


def test_a_red_alert_escalates_to_the_hospital_before_anyone_acknowledges(
        engine, replayed) -> None:
    _, alerts = replayed
    red = [a for a in alerts if a.severity == "red" and a.escalated_at is not None]
    assert red and {a.escalated_to for a in red} == {"hosp-lung"}
    with Session(engine) as session:
        doctors = {session.get(User, a.acknowledged_by).username for a in red}  # type: ignore[union-attr]
    assert doctors == {"doctor.hospital"}
    assert all(a.escalated_at < a.acknowledged_at for a in red)  # type: ignore[operator]


def test_the_gp_reads_every_red_alert_in_the_inbox(engine, replayed) -> None:
    with Session(engine) as session:
        items = session.exec(select(InboxItem)).all()
    old = [i for i in items if i.created_at < END - timedelta(days=4)]
    assert old and all(i.read_at is not None and i.read_at > i.created_at for i in old)
    assert all(i.organization_id == "gp-skovvej" for i in items)


@pytest.mark.parametrize(("severity", "raised_local", "earliest", "latest"), [
    ("red", datetime(2026, 3, 2, 3, 0), timedelta(minutes=4), timedelta(minutes=30)),
    ("yellow", datetime(2026, 3, 2, 10, 0), timedelta(minutes=20), timedelta(minutes=150)),
    ("yellow", datetime(2026, 3, 2, 19, 0), timedelta(hours=13), timedelta(hours=14, minutes=30)),
])
def test_the_nurse_answers_red_at_once_and_yellow_in_the_day_shift(
        severity: str, raised_local: datetime, earliest: timedelta, latest: timedelta) -> None:
    raised = raised_local.replace(tzinfo=TIMEZONE)
    for seed in range(20):
        answered = response_time(severity, raised, random.Random(seed))
        assert earliest <= answered - raised <= latest


def test_the_gp_reads_the_inbox_on_the_next_working_day() -> None:
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=TIMEZONE)
    assert next_working_time(saturday, (datetime.min.time().replace(hour=8),
                                        datetime.min.time().replace(hour=16)),
                             weekdays_only=True) == datetime(2026, 3, 9, 8, 0, tzinfo=TIMEZONE)
