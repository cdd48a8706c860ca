"""`telekol scheduler`: every N seconds, escalations and the time-based rules.

Several scheduler processes may run: a time-based alert is raised once because its
ScheduledAlertKey row (patient, rule, occurrence) is inserted in the same transaction;
the second process hits the primary key, rolls back and raises nothing.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.alert_lifecycle import live_event
from telekol.server.db import session_scope, utcnow
from telekol.server.escalation import TIMEZONE, apply_escalations, ensure_default_policy
from telekol.server.models import (
    Alert,
    Device,
    MeasurementSchedule,
    Observation,
    Patient,
    ScheduledAlertKey,
)
from telekol.server.rules import (
    DeviceState,
    PatientContext,
    Reading,
    ScheduledMeasurement,
    evaluate_schedule,
)
from telekol.server.triage import AlertRequest

log = logging.getLogger("telekol.scheduler")
DEFAULT_INTERVAL = 30.0
Publish = Callable[[list[dict[str, Any]]], None]
DEFAULT_SCHEDULE_ID = "default-spo2"
SCHEDULE_SOURCE = ("Stand-in until care plans exist: SpO2 expected daily by 12:00 local "
                   "(TeleKOL operational default)")


def ensure_defaults(engine: Engine) -> None:
    """Store the default schedule and escalation policy once (safe with several schedulers)."""
    try:
        with session_scope(engine) as session:
            if session.get(MeasurementSchedule, DEFAULT_SCHEDULE_ID) is None:
                session.add(MeasurementSchedule(id=DEFAULT_SCHEDULE_ID, code="spo2",
                                                due_local="12:00", source=SCHEDULE_SOURCE))
            ensure_default_policy(session)
    except IntegrityError:
        pass  # another scheduler stored them first


def occurrences(rows: list[MeasurementSchedule], patient_id: str, since: datetime,
                now: datetime) -> tuple[ScheduledMeasurement, ...]:
    """Return the patient's due times today and yesterday (local), not before `since`."""
    mine = {r.code: r for r in rows if r.patient_id is None}
    mine.update({r.code: r for r in rows if r.patient_id == patient_id})
    today = now.astimezone(TIMEZONE).date()
    found = []
    for row in mine.values():
        for day in (today - timedelta(days=1), today):
            due = datetime.combine(day, time.fromisoformat(row.due_local), TIMEZONE)
            if since <= due <= now:
                found.append(ScheduledMeasurement(row.code, due.astimezone(now.tzinfo)))
    return tuple(found)


def occurrence_key(request: AlertRequest, now: datetime) -> str:
    """Identify the occurrence a time-based alert is about (its once-only key)."""
    details = request.details
    if "due" in details:
        return str(details["due"])
    device = str(details.get("device_id", ""))
    if "last_seen_at" in details:  # one per silence
        return f"{device}@{details['last_seen_at']}"
    return f"{device}@{now.astimezone(TIMEZONE).date().isoformat()}"  # at most once a day


class Scheduler:
    """Run escalations and `evaluate_schedule` for every patient; publish what changed."""

    def __init__(self, engine: Engine, publish: Publish,
                 clock: Callable[[], datetime] = utcnow,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.engine, self.publish, self.clock, self.interval = engine, publish, clock, interval

    def run(self, stop: threading.Event) -> None:
        """Tick now and every `interval` seconds until `stop` is set."""
        ensure_defaults(self.engine)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("scheduler run failed")
            stop.wait(self.interval)

    def run_once(self) -> list[dict[str, Any]]:
        """Do one round at `clock()`; return (and publish) its live events."""
        now = self.clock()
        found = apply_escalations(self.engine, now)
        with Session(self.engine) as session:
            patients = list(session.exec(select(Patient)))
            schedule = list(session.exec(select(MeasurementSchedule)))
        for patient in patients:
            found.extend(self._patient(patient, schedule, now))
        if found:
            self.publish(found)
        return found

    def _patient(self, patient: Patient, schedule: list[MeasurementSchedule],
                 now: datetime) -> list[dict[str, Any]]:
        plan = occurrences(schedule, patient.id, patient.created_at, now)
        with Session(self.engine) as session:
            ctx = PatientContext(patient.id, now, _recent(session, patient.id, now),
                                 schedule=plan, devices=_devices(session, patient.id))
        return [e for r in evaluate_schedule(ctx) if (e := self._raise(patient, r, now))]

    def _raise(self, patient: Patient, request: AlertRequest,
               now: datetime) -> dict[str, Any] | None:
        key = ScheduledAlertKey(patient_id=patient.id, rule=request.rule,
                                occurrence=occurrence_key(request, now)[:120], created_at=now)
        with Session(self.engine, expire_on_commit=False) as session:
            if session.get(ScheduledAlertKey, (key.patient_id, key.rule, key.occurrence)):
                return None
            alert = session.exec(select(Alert).where(
                Alert.patient_id == patient.id, Alert.rule == request.rule,
                col(Alert.status) != "resolved")).first()
            if alert is None:  # one unresolved alert per patient and rule: repeats update it
                alert = Alert(patient_id=patient.id, rule=request.rule, created_at=now,
                              severity=request.severity, updated_at=now,
                              reason=request.reason[:500], details=request.details)
            else:
                alert.reason, alert.details = request.reason[:500], request.details
                alert.updated_at = now
            session.add(alert)
            try:
                session.flush()
                key.alert_id = alert.id
                session.add(key)
                session.flush()
            except IntegrityError:
                return None  # another scheduler raised this occurrence first
            event = live_event(session, alert)
            session.commit()
        return event


def _recent(session: Session, patient_id: str, now: datetime) -> tuple[Reading, ...]:
    start = now - timedelta(days=2)
    rows = session.exec(select(Observation).where(
        Observation.patient_id == patient_id, col(Observation.effective) >= start))
    return tuple(Reading(o.type_code, o.value or 0.0, "", o.effective, o.issued,
                         device_id=o.device_id) for o in rows)


def _devices(session: Session, patient_id: str) -> tuple[DeviceState, ...]:
    rows = session.exec(select(Device).where(Device.patient_id == patient_id))
    return tuple(DeviceState(d.id, d.last_seen_at, d.battery) for d in rows)


def mqtt_publisher(settings: Any) -> tuple[Publish, Callable[[], None]]:
    """Return (publish, close) on the internal events topic as `telekol-server`."""
    from telekol.device_gateway.mqtt import make_client
    from telekol.server.broker import service_password

    user = "telekol-server"  # its ACL allows writing telekol/v1/internal/events only
    client = make_client(f"{user}-scheduler-{secrets.token_hex(6)}", user,
                         service_password(settings, user))
    client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=20)
    client.loop_start()

    def publish(batch: list[dict[str, Any]]) -> None:
        client.publish(events.EVENTS_TOPIC, events.encode(batch), qos=1)

    def close() -> None:
        client.disconnect()
        client.loop_stop()

    return publish, close
