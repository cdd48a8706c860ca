"""Replay hub uploads through the service layer at their own times, with the care team's answers.

The ingest service stores each upload with its clock set to the moment it arrived, so the
rules see what they would have seen and raise what they would have raised. Then what
happens in real life happens at its own time: the scheduler escalates an open alert its
policy says to escalate (`apply_escalations`), the responsible organisation's nurse
acknowledges it (red within half an hour, yellow during the next day shift), the GP reads a
red one in the inbox on the next working day, and the scheduler's automatic resolve
(`Scheduler.auto_resolve`) closes it once its rule has been quiet for `auto_resolve_hours`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telekol.server.alerts import inbox
from telekol.server.alerts import lifecycle as alert_lifecycle
from telekol.server.alerts.escalation import Policy, apply_escalations, load_policies
from telekol.server.alerts.rule_context import parameters_for
from telekol.server.alerts.scheduler import Scheduler, ensure_defaults
from telekol.server.db import session_scope
from telekol.server.demo.history import Part, Upload
from telekol.server.demo.readings import ANSWERS, MEASUREMENTS, TIMEZONE
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.device_messages.questionnaire_responses import parse_questionnaire_responses
from telekol.server.device_messages.topics import measurements_topic, questionnaire_responses_topic
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Alert, Device, InboxItem, PatientRuleSettings, User

PARSERS: dict[str, Callable[[bytes, datetime], Sequence[Any]]] = {
    MEASUREMENTS: parse_measurements, ANSWERS: parse_questionnaire_responses}
TOPICS = {MEASUREMENTS: measurements_topic, ANSWERS: questionnaire_responses_topic}
TICK = timedelta(seconds=30)  # the scheduler's default interval
DEFAULT_QUIET_HOURS = parameters_for(None).auto_resolve_hours.value
DAY_SHIFT = (time(8), time(15))  # when the monitoring nurse works through yellow alerts
GP_HOURS = (time(8), time(16))  # weekdays
ROLE_ORDER = ("nurse", "doctor", "gp", "secretary")
# What the nurse writes (note) and tells the patient, by severity (demo data, in Danish as
# the nurses would write it).
RESPONSES = {
    "red": ("Ringet til patienten; tilset i hjemmet og aftalt opfølgning med lægen (demodata).",
            "Vi har set dine målinger og har talt med dig. Ring til os, hvis du får det værre."),
    "yellow": ("Talt med patienten i telefon; følger op ved næste måling (demodata).",
               "Vi har set din måling. Mål som aftalt, og ring til os, hvis du får det værre."),
}


@dataclass
class ReplaySummary:
    """What the replay stored and did."""

    uploads: int = 0
    alerts: int = 0
    escalated: int = 0
    acknowledged: int = 0
    resolved: int = 0


class HistoryReplay:
    """Store uploads oldest first at their own instants and answer the alerts they raise."""

    def __init__(self, engine: Engine, end: datetime, seed: int = 1) -> None:
        self.engine, self.end, self.now = engine, end, end
        self.service = IngestService(engine, clock=lambda: self.now)
        self.scheduler = Scheduler(engine, lambda _events: None, clock=lambda: self.now)
        self.rng = random.Random(seed)
        self.timers: list[tuple[datetime, int, str, int]] = []  # (at, order, action, alert)
        self.planned: set[tuple[object, ...]] = set()
        self.summary = ReplaySummary()
        self.owner: dict[str, str] = {}  # device id -> patient id
        self.policies: dict[str, Policy] = {}  # patient id -> escalation policy
        self.quiet_hours: dict[str, float] = {}  # patient id -> auto_resolve_hours if own

    def run(self, uploads: Iterable[Upload]) -> ReplaySummary:
        """Replay `uploads` (in arrival order) and what follows them, up to the end."""
        ensure_defaults(self.engine)  # the scheduler's default policy, as on its first run
        with Session(self.engine) as session:
            self.owner = {d.id: d.patient_id for d in session.exec(select(Device))
                          if d.patient_id}
            patients = set(self.owner.values())
            self.policies = load_policies(session, patients)
            self.quiet_hours = {s.patient_id: parameters_for(s).auto_resolve_hours.value
                                for s in session.exec(select(PatientRuleSettings))}
        for upload in uploads:
            self._until(upload.at)
            self.now = upload.at
            self.service.ingest([_delivery(part) for part in upload.parts])
            self.summary.uploads += 1
            self._plan({self.owner[p.device_id] for p in upload.parts if p.device_id in self.owner})
        self._until(self.end)
        self.now = self.end
        return self.summary

    def _until(self, moment: datetime) -> None:
        while self.timers and self.timers[0][0] <= moment:
            at, _, action, alert_id = heapq.heappop(self.timers)
            self.now = at
            if action == "escalate":
                self.summary.escalated += len(apply_escalations(self.engine, at))
            elif action == "resolve":
                self.summary.resolved += len(self.scheduler.auto_resolve(at))
            elif action == "acknowledge":
                self._acknowledge(alert_id)
            else:
                self._gp_reads(alert_id)

    def _at(self, moment: datetime, action: str, alert_id: int, *key: object) -> None:
        if moment <= self.end and (action, alert_id, *key) not in self.planned:
            self.planned.add((action, alert_id, *key))
            heapq.heappush(self.timers, (moment, len(self.planned), action, alert_id))

    def _plan(self, patient_ids: set[str]) -> None:
        """Plan what follows each unresolved alert of these patients, once per change."""
        with Session(self.engine) as session:
            alerts = session.exec(select(Alert).where(
                col(Alert.patient_id).in_(patient_ids), col(Alert.status) != "resolved")).all()
        for alert in alerts:
            assert alert.id is not None
            if ("seen", alert.id) not in self.planned:
                self.planned.add(("seen", alert.id))
                self.summary.alerts += 1
            self._follow(alert, alert.id)

    def _follow(self, alert: Alert, alert_id: int) -> None:
        """Plan the automatic resolve, the GP's reading, the escalation and the nurse's answer."""
        hours = self.quiet_hours.get(alert.patient_id, DEFAULT_QUIET_HOURS)
        self._at(alert.updated_at + timedelta(hours=hours) + TICK, "resolve", alert_id,
                 alert.updated_at)
        if alert.severity == "red":  # in the GP's inbox from now on
            later = alert.updated_at + timedelta(hours=self.rng.uniform(1, 4))
            self._at(next_working_time(later, GP_HOURS, weekdays_only=True)
                     + timedelta(minutes=self.rng.uniform(0, 60)), "read", alert_id)
        if alert.status != "open":
            return
        policy = self.policies.get(alert.patient_id)
        limit = policy.limits.get(alert.severity) if policy else None
        if limit is not None:
            since = alert.escalated_at or alert.created_at
            self._at(since + timedelta(minutes=limit) + TICK, "escalate", alert_id, since)
        self._at(response_time(alert.severity, alert.created_at, self.rng), "acknowledge",
                 alert_id)

    def _acknowledge(self, alert_id: int) -> None:
        with session_scope(self.engine) as session:
            alert = session.get(Alert, alert_id)
            owner = alert_lifecycle.responsible(session, alert) if alert else None
            user = _staff(session, owner["id"], ROLE_ORDER) if owner else None
            if alert is None or user is None or alert.status != "open":
                return  # resolved or acknowledged meanwhile
            note, message = RESPONSES.get(alert.severity, RESPONSES["yellow"])
            alert_lifecycle.acknowledge(session, user, alert_id, note, clock=lambda: self.now,
                                        patient_message=message)
        self.summary.acknowledged += 1

    def _gp_reads(self, alert_id: int) -> None:
        with session_scope(self.engine) as session:
            for item in session.exec(select(InboxItem).where(InboxItem.alert_id == alert_id)):
                user = _staff(session, item.organization_id, ("gp", "doctor", "nurse"))
                if user is not None and item.id is not None:
                    inbox.mark_read(session, user, item.id, self.now)


def response_time(severity: str, raised: datetime, rng: random.Random) -> datetime:
    """Return when the monitoring nurse acknowledges an alert raised at `raised`."""
    if severity == "red":
        return raised + timedelta(minutes=rng.uniform(4, 30))
    start = next_working_time(raised, DAY_SHIFT)
    delay = rng.uniform(20, 150) if start == raised else rng.uniform(0, 90)
    return start + timedelta(minutes=delay)


def next_working_time(moment: datetime, hours: tuple[time, time], *,
                      weekdays_only: bool = False) -> datetime:
    """Return `moment` if it falls in working hours, else when they next begin (local)."""
    local = moment.astimezone(TIMEZONE)
    day = local.date()
    for _ in range(8):
        working = not weekdays_only or day.weekday() < 5
        opens = datetime.combine(day, hours[0], TIMEZONE)
        closes = datetime.combine(day, hours[1], TIMEZONE)
        if working and local < closes:
            return max(moment, opens)
        day += timedelta(days=1)
    return moment


def _staff(session: Session, org_id: str, roles: tuple[str, ...]) -> User | None:
    users = session.exec(select(User).where(User.organization_id == org_id,
                                            col(User.active).is_(True),
                                            col(User.role).in_(roles))).all()
    return min(users, key=lambda u: (roles.index(u.role), u.id or 0), default=None)


def _delivery(part: Part) -> ParsedDelivery:
    items = PARSERS[part.kind](part.payload, part.received_at)
    return ParsedDelivery(TOPICS[part.kind](part.device_id), part.device_id, part.received_at,
                          items, part.payload)
