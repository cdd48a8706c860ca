"""One transaction's alert requests: open new alerts, count repeats of unresolved ones.

Used by the Recorder (server/ingest/recorder.py). One unresolved alert per patient and rule: a
request for a rule that has one updates it (count, latest reading, and "why it has its
colour" only when the severity got worse); otherwise a new alert is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select
from telekol.server.alerts.store import alert_row, lower_than, rank
from telekol.server.alerts.triage import AlertRequest
from telekol.server.models import Alert


@dataclass
class Seen:
    """A rule's request about one reading: what it found, about which reading, taken when."""

    request: AlertRequest
    observation_id: str | None
    taken_at: datetime


@dataclass
class _Repeats:
    """What this transaction saw of a stored unresolved alert, applied after the flush."""

    alert: Alert
    count: int = 0
    latest: Seen | None = None
    worst: Seen | None = None  # the first request of the highest severity seen here


class AlertBook:
    """The alerts of some patients as one transaction raises them."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.open: dict[tuple[str, str], Alert] = {}
        self.new: list[Alert] = []
        self.repeats: dict[int, _Repeats] = {}
        self.replaced: dict[int, Alert] = {}  # id() of an alert resolved meanwhile -> new one

    def load(self, patient_ids: Iterable[str]) -> None:
        """Read the unresolved alerts of the patients that have requests (one query)."""
        ids = set(patient_ids)
        if ids:
            self.open.update({(a.patient_id, a.rule): a for a in self.session.exec(
                select(Alert).where(col(Alert.patient_id).in_(ids),
                                    col(Alert.status) != "resolved"))})

    def raise_(self, patient_id: str, seen: Seen) -> Alert:
        """Open an alert, or count a repeat of the unresolved one of the same rule."""
        alert = self.open.get((patient_id, seen.request.rule))
        if alert is None:
            alert = alert_row(patient_id, seen.observation_id, seen.request, self.now,
                              seen.taken_at)
            self.new.append(alert)
            self.open[(patient_id, seen.request.rule)] = alert
        elif alert.id is None:  # opened earlier in this transaction, not stored yet
            alert.count += 1
            _latest(alert, seen)
            if rank(seen.request.severity) > rank(alert.severity):
                _deciding(alert, seen)
        else:
            found = self.repeats.setdefault(alert.id, _Repeats(alert))
            found.count += 1
            found.latest = seen
            if found.worst is None or rank(seen.request.severity) > rank(
                    found.worst.request.severity):
                found.worst = seen
        return alert

    def apply_repeats(self) -> list[Alert]:
        """Update stored alerts in SQL (count + n), safe against another process doing so."""
        updated = []
        for alert_id, change in self.repeats.items():
            assert change.latest is not None and change.worst is not None
            latest = change.latest
            done = self.session.execute(
                update(Alert).where(col(Alert.id) == alert_id, col(Alert.status) != "resolved")
                .values(count=col(Alert.count) + change.count,
                        reason=latest.request.reason[:500], details=latest.request.details,
                        last_observation_id=latest.observation_id, last_at=latest.taken_at,
                        updated_at=self.now)
                .execution_options(synchronize_session=False))
            if getattr(done, "rowcount", 1) == 0:  # resolved meanwhile: open a new one
                fresh = alert_row(change.alert.patient_id, change.worst.observation_id,
                                  change.worst.request, self.now, change.worst.taken_at)
                fresh.count = change.count
                _latest(fresh, latest)
                self.new.append(fresh)
                self.replaced[id(change.alert)] = fresh
                continue
            worst = change.worst
            self.session.execute(  # only a worse severity moves "why it is this colour"
                update(Alert).where(col(Alert.id) == alert_id,
                                    col(Alert.severity).in_(lower_than(worst.request.severity)))
                .values(severity=worst.request.severity,
                        severity_reason=worst.request.reason[:500],
                        severity_details=worst.request.details,
                        severity_observation_id=worst.observation_id,
                        severity_at=worst.taken_at)
                .execution_options(synchronize_session=False))
            self.session.refresh(change.alert)
            updated.append(change.alert)
        return updated


def _latest(alert: Alert, seen: Seen) -> None:
    alert.reason, alert.details = seen.request.reason[:500], seen.request.details
    alert.last_observation_id, alert.last_at = seen.observation_id, seen.taken_at


def _deciding(alert: Alert, seen: Seen) -> None:
    alert.severity = seen.request.severity
    alert.severity_reason = seen.request.reason[:500]
    alert.severity_details = seen.request.details
    alert.severity_observation_id, alert.severity_at = seen.observation_id, seen.taken_at
