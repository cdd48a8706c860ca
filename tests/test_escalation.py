"""Escalation with a controllable clock: unacknowledged red alerts move along the chain."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session, select
from telekol.server.alerts.escalation import (
    Policy,
    Window,
    apply_escalations,
    due_escalations,
    ensure_default_policy,
)
from telekol.server.alerts.lifecycle import acknowledge
from telekol.server.models import Alert, AlertEscalation, User

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Copenhagen
CHAIN = Policy(("muni-aalby", "hosp-lung"), {"red": 60})


def alert(status: str = "open", severity: str = "red", at: datetime = T0) -> Alert:
    return Alert(id=1, patient_id="p1", rule="threshold:spo2", severity=severity, status=status,
                 reason="SpO2 84 %", created_at=at, updated_at=at)


def test_unacknowledged_red_past_the_limit_escalates_municipality_to_hospital() -> None:
    assert due_escalations([alert()], {"p1": CHAIN}, {}, T0 + timedelta(minutes=59)) == []
    [step] = due_escalations([alert()], {"p1": CHAIN}, {}, T0 + timedelta(minutes=60))
    assert (step.from_org, step.to_org, step.level) == ("muni-aalby", "hosp-lung", 1)


def test_acknowledged_before_the_limit_does_not_escalate() -> None:
    later = T0 + timedelta(hours=5)
    assert due_escalations([alert("acknowledged")], {"p1": CHAIN}, {}, later) == []


def test_yellow_without_a_limit_and_the_end_of_the_chain_stay() -> None:
    later = T0 + timedelta(hours=5)
    assert due_escalations([alert(severity="yellow")], {"p1": CHAIN}, {}, later) == []
    last = alert()
    last.escalation_level = 1
    assert due_escalations([last], {"p1": CHAIN}, {}, later) == []


def test_a_closed_organisation_escalates_at_once_to_the_next_open_one() -> None:
    evening = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 20:00 local
    hours = {"muni-aalby": [Window(1, time(8), time(15))],
             "gp-torvet": [Window(1, time(8), time(16))]}
    policy = Policy(("muni-aalby", "gp-torvet", "hosp-lung"), {"red": 60})
    [step] = due_escalations([alert(at=evening)], {"p1": policy}, hours, evening)
    assert (step.to_org, step.level) == ("hosp-lung", 2)
    assert "closed" in step.reason
    assert due_escalations([alert()], {"p1": policy}, hours, T0 + timedelta(minutes=1)) == []


def _red_alert(engine, patient_id: str) -> int:
    with Session(engine) as session:
        ensure_default_policy(session)
        row = Alert(patient_id=patient_id, rule="threshold:spo2", severity="red",
                    reason="SpO2 84 %", created_at=T0, updated_at=T0)
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def test_the_escalation_event_reaches_the_hospital_room_and_is_recorded(engine, demo) -> None:
    alert_id = _red_alert(engine, demo["patients"][0]["id"])  # muni-aalby, gp-torvet, hosp-lung
    assert apply_escalations(engine, T0 + timedelta(minutes=30)) == []
    [event] = apply_escalations(engine, T0 + timedelta(minutes=61))
    assert "org:hosp-lung" in event["rooms"]
    assert (event["data"]["id"], event["data"]["escalated_to"]) == (alert_id, "hosp-lung")
    assert apply_escalations(engine, T0 + timedelta(hours=5)) == []  # end of the chain
    with Session(engine) as session:
        [row] = session.exec(select(AlertEscalation)).all()
        assert (row.alert_id, row.to_organization, row.from_organization, row.actor) == (
            alert_id, "hosp-lung", "muni-aalby", "scheduler")
        stored = session.get(Alert, alert_id)
        assert stored is not None and stored.escalation_level == 1


def test_an_acknowledged_alert_is_not_escalated(engine, demo) -> None:
    alert_id = _red_alert(engine, demo["patients"][0]["id"])
    with Session(engine) as session:
        nurse = session.exec(select(User).where(User.username == "nurse.aalby")).one()
        acknowledge(session, nurse, alert_id, clock=lambda: T0 + timedelta(minutes=10))
        session.commit()
    assert apply_escalations(engine, T0 + timedelta(hours=2)) == []


def test_a_patient_without_a_hospital_on_the_team_is_not_escalated(engine, demo) -> None:
    _red_alert(engine, demo["patients"][1]["id"])  # muni-aalby, gp-torvet
    assert apply_escalations(engine, T0 + timedelta(hours=2)) == []
