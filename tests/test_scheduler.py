"""The scheduler: time-based alerts raised once, even with two schedulers at the same moment."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, func, select
from telekol.server.alerts.escalation import TIMEZONE
from telekol.server.alerts.scheduler import Scheduler, ensure_defaults
from telekol.server.models import (
    Alert,
    Device,
    MeasurementSchedule,
    Patient,
    PatientRuleSettings,
    ScheduledAlertKey,
)


def evening_after_enrolment(engine) -> datetime:
    """Return 18:00 local, three days after the last demo patient was created."""
    with Session(engine) as session:
        created = session.exec(select(func.max(Patient.created_at))).one()
    day = created.astimezone(TIMEZONE).date() + timedelta(days=3)
    return datetime.combine(day, time(18), TIMEZONE)


def run_in_parallel(engine, now: datetime) -> list[dict]:
    published: list[dict] = []
    schedulers = [Scheduler(engine, published.extend, clock=lambda: now) for _ in range(2)]
    threads = [threading.Thread(target=s.run_once) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return published


def count(engine, rule: str, patient_id: str) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Alert).where(
            Alert.rule == rule, Alert.patient_id == patient_id)).all())


def test_two_schedulers_raise_a_missing_measurement_once(engine, demo) -> None:
    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    published = run_in_parallel(engine, now)
    for patient in demo["patients"]:
        assert count(engine, "missing:spo2", patient["id"]) == 1
    with Session(engine) as session:
        keys = session.exec(select(ScheduledAlertKey)).all()
    # The COPD programme's plan: SpO2 at 09:00 and 17:00 in the first two weeks. Missing by
    # 18:00 on day 3: yesterday's two and today's 09:00 (17:00 is still within its grace),
    # once each, one alert per patient.
    assert len(keys) == 3 * len(demo["patients"])
    assert {e["data"]["severity"] for e in published} == {"blue"}
    assert run_in_parallel(engine, now) == []


def test_nothing_is_missing_for_patients_whose_plans_schedule_nothing(engine, demo) -> None:
    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    with Session(engine) as session:  # no default schedule is imposed on anyone
        session.execute(delete(MeasurementSchedule))
        session.commit()
    assert run_in_parallel(engine, now) == []


def test_only_what_the_plan_schedules_can_be_missing(engine, demo) -> None:
    now = evening_after_enrolment(engine)
    patient = demo["patients"][0]["id"]
    with Session(engine) as session:  # a patient with only a scale: weight, no SpO2
        session.execute(delete(MeasurementSchedule).where(
            col(MeasurementSchedule.patient_id) == patient))
        session.add(MeasurementSchedule(id="scale", patient_id=patient, code="weight",
                                        due_local="08:00"))
        session.commit()
    Scheduler(engine, lambda events: None, clock=lambda: now).run_once()
    assert count(engine, "missing:spo2", patient) == 0
    assert count(engine, "missing:weight", patient) == 1


def test_the_patients_own_grace_time_decides_when_a_reading_is_missing(engine, demo) -> None:
    now = evening_after_enrolment(engine).replace(hour=10, minute=30)
    first, second = demo["patients"][0]["id"], demo["patients"][1]["id"]
    with Session(engine) as session:
        for patient in (first, second):
            session.execute(delete(MeasurementSchedule).where(
                col(MeasurementSchedule.patient_id) == patient))
            session.add(MeasurementSchedule(id=f"spo2-{patient}", patient_id=patient,
                                            code="spo2", due_local="10:00"))
        # 10:00 + 20 min grace is past at 10:30; the default 120 min is not.
        settings = session.get(PatientRuleSettings, first) or PatientRuleSettings(
            patient_id=first)
        settings.overrides = {**settings.overrides, "missing_grace_minutes": 20}
        session.add(settings)
        session.commit()
    Scheduler(engine, lambda events: None, clock=lambda: now).run_once()
    today = now.replace(hour=10, minute=0).isoformat()  # the occurrence: today 10:00
    with Session(engine) as session:
        missed_today = set(session.exec(select(ScheduledAlertKey.patient_id).where(
            ScheduledAlertKey.rule == "missing:spo2", ScheduledAlertKey.occurrence == today)))
    assert missed_today == {first}


def test_a_silent_device_gives_one_blue_alert(engine, demo) -> None:
    now = evening_after_enrolment(engine)
    device_id, patient_id = demo["devices"][0]["device_id"], demo["devices"][0]["patient"]
    with Session(engine) as session:
        device = session.get(Device, device_id)
        assert device is not None
        device.last_seen_at = now - timedelta(hours=30)
        session.add(device)
        session.commit()
    published = run_in_parallel(engine, now)
    published += run_in_parallel(engine, now + timedelta(minutes=1))
    assert count(engine, "device:silent", patient_id) == 1
    [event] = [e for e in published if e["data"]["rule"] == "device:silent"]
    assert f"patient:{patient_id}" in event["rooms"]


def test_the_scheduler_escalates_and_stops_when_asked(engine, demo) -> None:
    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    patient_id = demo["patients"][0]["id"]
    with Session(engine) as session:
        session.add(Alert(patient_id=patient_id, rule="threshold:spo2", severity="red",
                          reason="SpO2 84 %", created_at=now - timedelta(hours=2),
                          updated_at=now - timedelta(hours=2)))
        session.commit()
    published: list[dict] = []
    stop = threading.Event()
    scheduler = Scheduler(engine, published.extend, clock=lambda: now, interval=3600)
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    while thread.is_alive() and not any(e["data"].get("escalated_to") for e in published):
        thread.join(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    [event] = [e for e in published if e["data"].get("escalated_to")]
    assert event["data"]["escalated_to"] == "hosp-lung" and "org:hosp-lung" in event["rooms"]


def test_repeated_rejections_give_one_blue_device_alert(engine, demo) -> None:
    from telekol.server.ingest.batch import IngestService

    from tests.test_ingest import delivery

    now = evening_after_enrolment(engine)
    device_id, patient_id = demo["devices"][1]["device_id"], demo["devices"][1]["patient"]
    service = IngestService(engine, clock=lambda: now)
    for index in range(2):
        service.ingest([delivery(device_id, raw=f"garbage {index}".encode())])
    run_in_parallel(engine, now)
    assert count(engine, "device:rejections", patient_id) == 0  # two is below the limit
    service.ingest([delivery(device_id, raw=b"garbage 3")])
    run_in_parallel(engine, now + timedelta(minutes=1))
    assert count(engine, "device:rejections", patient_id) == 1


def test_care_plan_days_count_from_the_start_of_the_episode(engine, demo) -> None:
    from telekol.server.models import Episode

    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    patient = demo["patients"][0]["id"]
    with Session(engine) as session:
        session.execute(delete(MeasurementSchedule).where(
            col(MeasurementSchedule.patient_id) == patient))
        episode = session.exec(select(Episode).where(Episode.patient_id == patient)).one()
        episode.started_at = now - timedelta(days=20)  # the first two weeks are over
        session.add(episode)
        session.add(MeasurementSchedule(id="intensive", patient_id=patient, code="weight",
                                        due_local="09:00", from_day=0, to_day=13))
        session.add(MeasurementSchedule(id="after", patient_id=patient, code="pulse",
                                        due_local="09:00", from_day=14))
        session.commit()
    Scheduler(engine, lambda events: None, clock=lambda: now).run_once()
    # Counted from enrolment (three days ago) it would be the other way round.
    assert count(engine, "missing:weight", patient) == 0
    assert count(engine, "missing:pulse", patient) == 1
