"""`telekol scheduler`: every N seconds, escalations, snoozes that ran out, automatic
resolves and the time-based rules.

Several scheduler processes may run: a time-based alert is raised once because its
ScheduledAlertKey row (patient, rule, occurrence) is inserted in the same transaction;
the second process hits the primary key, rolls back and raises nothing.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.alerts import inbox
from telekol.server.alerts.escalation import TIMEZONE, apply_escalations, ensure_default_policy
from telekol.server.alerts.lifecycle import live_event, record
from telekol.server.alerts.rule_context import parameters_for
from telekol.server.alerts.rules import (
    DeviceState,
    PatientContext,
    Reading,
    RuleParameters,
    ScheduledMeasurement,
    default_parameters,
    evaluate_schedule,
)
from telekol.server.alerts.store import alert_row
from telekol.server.alerts.triage import AlertRequest
from telekol.server.audit import log as audit
from telekol.server.audit.system import scheduler_decision
from telekol.server.care.episodes import finished_patient_ids
from telekol.server.care.pauses import paused_patient_ids, resumed_at
from telekol.server.db import session_scope, utcnow
from telekol.server.models import (
    Alert,
    Device,
    Episode,
    InboundMessage,
    MeasurementSchedule,
    Observation,
    Patient,
    PatientRuleSettings,
    QuarantinedMessage,
    QuarantineOverflow,
    ScheduledAlertKey,
)

log = logging.getLogger("telekol.scheduler")
DEFAULT_INTERVAL = 30.0
Publish = Callable[[list[dict[str, Any]]], None]
def ensure_defaults(engine: Engine) -> None:
    """Store the default escalation policy once (safe with several schedulers)."""
    try:
        with session_scope(engine) as session:
            ensure_default_policy(session)
    except IntegrityError:
        pass  # another scheduler stored it first


def occurrences(rows: list[MeasurementSchedule], patient_id: str, since: datetime,
                now: datetime, started: datetime | None = None) -> tuple[ScheduledMeasurement, ...]:
    """Return the patient's due times today and yesterday (local), not before `since`.

    Only the patient's own rows count: schedules come from the patient's care plan
    (server/care/plan.py writes them), never from a default imposed on everyone. Plan days
    (`from_day`, `to_day`, `every_days`) count from the local date of `started`, the start
    of the patient's current episode (`since` when not given); day 0 is that date.
    """
    chosen = [r for r in rows if r.patient_id == patient_id]
    today = now.astimezone(TIMEZONE).date()
    first = (started or since).astimezone(TIMEZONE).date()
    found: dict[tuple[str, datetime], ScheduledMeasurement] = {}
    for row in chosen:
        for day in (today - timedelta(days=1), today):
            if not _scheduled_on(row, day, (day - first).days):
                continue
            due = datetime.combine(day, time.fromisoformat(row.due_local), TIMEZONE)
            if since <= due <= now:  # two rows at the same time count once
                found[(row.code, due)] = ScheduledMeasurement(row.code,
                                                              due.astimezone(now.tzinfo))
    return tuple(found.values())


def _scheduled_on(row: MeasurementSchedule, day: date, plan_day: int) -> bool:
    """Return whether the row expects its measurement on `day`, plan day `plan_day`."""
    if plan_day < row.from_day or (row.to_day is not None and plan_day > row.to_day):
        return False
    if row.weekdays and day.weekday() not in row.weekdays:
        return False
    return (plan_day - row.from_day) % max(row.every_days, 1) == 0


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
        found.extend(self.unsnooze(now))
        found.extend(self.auto_resolve(now))
        with Session(self.engine) as session:
            patients = list(session.exec(select(Patient)))
            schedule = list(session.exec(select(MeasurementSchedule)))
            settings = {s.patient_id: s for s in session.exec(select(PatientRuleSettings))}
            # Paused, or the episode has finished: nothing is expected of the patient.
            quiet = paused_patient_ids(session, now) | finished_patient_ids(session)
            resumed = resumed_at(session, now)
            # Care-plan days (from_day, to_day, every_days) count from the episode's start.
            started = dict(session.exec(select(Episode.patient_id, Episode.started_at).where(
                Episode.status != "finished")).all())
        for patient in patients:
            if patient.id not in quiet:
                found.extend(self._patient(patient, schedule, now, resumed.get(patient.id),
                                           started.get(patient.id),
                                           parameters_for(settings.get(patient.id))))
        if found:
            self.publish(found)
        return found

    def unsnooze(self, now: datetime) -> list[dict[str, Any]]:
        """Reopen snoozed alerts whose time has passed; one transaction per alert."""
        with Session(self.engine) as session:
            ids = list(session.exec(select(Alert.id).where(
                Alert.status == "snoozed", col(Alert.snoozed_until) <= now)))
        found = []
        for alert_id in ids:
            with Session(self.engine, expire_on_commit=False) as session:
                done = session.execute(
                    update(Alert).where(col(Alert.id) == alert_id, col(Alert.status) == "snoozed",
                                        col(Alert.snoozed_until) <= now)
                    .values(status="open", snoozed_until=None, snooze_reason=None, updated_at=now)
                    .execution_options(synchronize_session=False))
                alert = session.get(Alert, alert_id)
                if getattr(done, "rowcount", 0) != 1 or alert is None:
                    continue  # acknowledged, resolved or reopened by another process meanwhile
                record(session, alert, "unsnoozed", "scheduler", now, note="snooze ended")
                audit.append(session, [scheduler_decision(alert, "update", "snooze ended")])
                found.append(live_event(session, alert))
                session.commit()
        return found

    def auto_resolve(self, now: datetime) -> list[dict[str, Any]]:
        """Resolve unresolved reading-based alerts whose rule has not fired again for the
        patient's `auto_resolve_hours` (measured from receipt of the latest reading that
        raised it). Time-based alerts (no reading) are left to clinicians."""
        latest = func.coalesce(Alert.last_observation_id, Alert.observation_id)
        with Session(self.engine) as session:
            rows = [(a.id, a.patient_id, a.rule, a.last_observation_id or a.observation_id,
                     issued) for a, issued in session.exec(select(Alert, Observation.issued).join(
                        Observation, col(Observation.id) == latest).where(
                        col(Alert.status) != "resolved"))]
            settings = {s.patient_id: s for s in session.exec(select(PatientRuleSettings).where(
                col(PatientRuleSettings.patient_id).in_({r[1] for r in rows})))}
        found = []
        for alert_id, patient_id, rule, observation_id, issued in rows:
            hours = parameters_for(settings.get(patient_id)).auto_resolve_hours.value
            if now - issued < timedelta(hours=hours):
                continue
            with Session(self.engine, expire_on_commit=False) as session:
                done = session.execute(
                    update(Alert).where(col(Alert.id) == alert_id,
                                        col(Alert.status) != "resolved", latest == observation_id)
                    .values(status="resolved", resolution="automatic", resolved_by=None,
                            resolved_at=now, updated_at=now, snoozed_until=None,
                            snooze_reason=None)
                    .execution_options(synchronize_session=False))
                alert = session.get(Alert, alert_id)
                if getattr(done, "rowcount", 0) != 1 or alert is None:
                    continue  # fired again or resolved meanwhile
                record(session, alert, "auto-resolved", "scheduler", now,
                       note=f"{rule} has not fired for {hours:g} h")
                audit.append(session, [scheduler_decision(alert, "update", "resolved")])
                found.append(live_event(session, alert))
                session.commit()
        return found

    def _patient(self, patient: Patient, schedule: list[MeasurementSchedule],
                 now: datetime, resumed: datetime | None = None,
                 started: datetime | None = None,
                 parameters: RuleParameters | None = None) -> list[dict[str, Any]]:
        plan = occurrences(schedule, patient.id, patient.created_at, now, started=started)
        if resumed is not None:  # what fell due during a pause is not missing
            plan = tuple(item for item in plan if item.due > resumed)
        with Session(self.engine) as session:
            # The patient's own parameters (e.g. a longer missing_grace_minutes in the plan).
            ctx = PatientContext(patient.id, now, _recent(session, patient.id, now),
                                 parameters=parameters or default_parameters(),
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
            action = "updated" if alert is not None else "created"
            if alert is None:  # one unresolved alert per patient and rule: repeats update it
                alert = alert_row(patient.id, None, request, now)
            else:
                alert.reason, alert.details = request.reason[:500], request.details
                alert.updated_at = alert.last_at = now
            session.add(alert)
            try:
                session.flush()
                key.alert_id = alert.id
                session.add(key)
                session.flush()
            except IntegrityError:
                return None  # another scheduler raised this occurrence first
            inbox.after_change(session, alert, action, "scheduler", now)  # history, GP if red
            audit.append(session, [scheduler_decision(
                alert, "create" if action == "created" else "update", "raised")])
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
    return tuple(DeviceState(d.id, d.last_seen_at, d.battery, _rejections_in_a_row(session, d.id))
                 for d in rows)


def _rejections_in_a_row(session: Session, device_id: str) -> int:
    """Count the device's rejected messages since its last accepted one.

    Those beyond the quarantine quota are only counted (server/ingest/quarantine.py); they count
    here when the last of them came after the last accepted message.
    """
    last_accepted = session.exec(select(func.max(InboundMessage.received_at)).where(
        InboundMessage.device_id == device_id)).one()
    query = select(func.count()).select_from(QuarantinedMessage).where(
        QuarantinedMessage.device_id == device_id)
    if last_accepted is not None:
        query = query.where(col(QuarantinedMessage.received_at) > last_accepted)
    overflow = session.get(QuarantineOverflow, device_id)
    dropped = overflow.dropped if overflow and (
        last_accepted is None or overflow.last_at > last_accepted) else 0
    return int(session.exec(query).one()) + dropped


def mqtt_publisher(settings: Any) -> tuple[Publish, Callable[[], None]]:
    """Return (publish, close) on the internal events topic as `telekol-server`."""
    from telekol.server.broker.client import make_client
    from telekol.server.broker.mosquitto import service_password

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
