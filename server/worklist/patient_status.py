"""A patient's current status: one truth for the work list, the patient's page, /me and /api.

The status is the worst severity among the patient's open and acknowledged alerts (a
snoozed alert is set aside until its time runs out; a resolved one is over), or green when
there are none. A patient whose monitoring is paused is shown as paused. The deciding alert
is the worst one, the newest first; it is what a screen says "why" with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select
from telekol.server.alerts.store import rank
from telekol.server.care.pauses import paused_patient_ids
from telekol.server.models import Alert

COUNTED = ("open", "acknowledged")  # statuses that colour the patient


@dataclass(frozen=True)
class PatientStatus:
    """Where a patient stands now, and the alerts behind it."""

    patient_id: str
    severity: str  # red | yellow | blue | green
    paused: bool
    alerts: tuple[Alert, ...]  # unresolved (snoozed too), the deciding one first

    @property
    def shown(self) -> str:
        """Return what a screen shows: "paused" while paused, else the severity."""
        return "paused" if self.paused else self.severity

    @property
    def deciding(self) -> Alert | None:
        """Return the alert that gives the patient its colour (worst, then newest)."""
        first = self.alerts[0] if self.alerts else None
        return first if first is not None and first.status in COUNTED else None

    @property
    def unacknowledged(self) -> bool:
        """Return whether any alert is open: nobody has acknowledged it yet."""
        return any(a.status == "open" for a in self.alerts)

    @property
    def since(self) -> datetime | None:
        """Return when the deciding alert last happened (its newest reading or update)."""
        alert = self.deciding
        return (alert.last_at or alert.updated_at) if alert else None


def order(alert: Alert) -> tuple[int, int, float]:
    """Sort key: counted before snoozed, worst first, newest first."""
    happened = alert.last_at or alert.updated_at or alert.created_at
    return (0 if alert.status in COUNTED else 1, -rank(alert.severity), -happened.timestamp())


def statuses(session: Session, patient_ids: Iterable[str], now: datetime,
             ) -> dict[str, PatientStatus]:
    """Return every listed patient's status at `now` (two queries, whatever the number)."""
    ids = set(patient_ids)
    grouped: dict[str, list[Alert]] = {pid: [] for pid in ids}
    for alert in session.exec(select(Alert).where(col(Alert.patient_id).in_(ids),
                                                  col(Alert.status) != "resolved")):
        grouped[alert.patient_id].append(alert)
    paused = paused_patient_ids(session, now) & ids
    return {pid: status_of(pid, alerts, pid in paused) for pid, alerts in grouped.items()}


def status_of(patient_id: str, alerts: Iterable[Alert], paused: bool) -> PatientStatus:
    """Return the status a patient's unresolved alerts give (pure)."""
    ordered = tuple(sorted(alerts, key=order))
    counted = [a for a in ordered if a.status in COUNTED]
    severity = counted[0].severity if counted else "green"
    return PatientStatus(patient_id, severity, paused, ordered)


def status(session: Session, patient_id: str, now: datetime) -> PatientStatus:
    """Return one patient's status at `now`."""
    return statuses(session, [patient_id], now)[patient_id]
