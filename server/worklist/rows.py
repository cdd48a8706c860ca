"""The triage work list: one row per patient the user may see, the most urgent first.

Rows are sorted by status (red, yellow, blue, green; paused last), then by the newest
deciding event, then by name. Filters narrow the list ("my organisation must act",
"unacknowledged", "missing data", "paused"), a search matches name or CPR, and the list is
paged. A few queries serve any number of patients; the page's own rows get their details
(latest values, trend) from the views.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select
from telekol.server.care.access import visible_patients
from telekol.server.models import CareTeamMember, Observation, Patient, User
from telekol.server.worklist.patient_status import COUNTED, PatientStatus, statuses

FILTERS = ("mine", "unacknowledged", "missing", "paused")
PAGE_SIZE = 50
STATUS_ORDER = {"red": 0, "yellow": 1, "blue": 2, "green": 3, "paused": 4}
MISSING_RULES = ("missing:", "device:silent")
_CPR_RE = re.compile(r"\A\d{6}-?\d{0,4}\Z")


@dataclass(frozen=True)
class WorklistQuery:
    """What the user asked for: a search text, filters and a page."""

    text: str = ""
    filters: frozenset[str] = frozenset()
    page: int = 1
    size: int = PAGE_SIZE

    @classmethod
    def parse(cls, args: dict[str, list[str]]) -> WorklistQuery:
        """Return the query a request's arguments name (unknown values are ignored)."""
        text = " ".join((args.get("q") or [""])[0].split())[:100]
        filters = frozenset(f for f in args.get("filter", []) if f in FILTERS)
        page = (args.get("page") or ["1"])[0]
        return cls(text, filters, int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1)


@dataclass(frozen=True)
class Row:
    """One patient on the work list and what decides their place in it."""

    patient: Patient
    status: PatientStatus
    responsible: dict[int, str]  # alert id → organisation that must act on it
    last_reading_at: datetime | None
    viewer_org: str | None

    @property
    def mine(self) -> bool:
        """Return whether the viewer's organisation must act on one of the patient's alerts."""
        return any(self.responsible.get(a.id or 0) == self.viewer_org
                   for a in self.status.alerts if a.status in COUNTED)

    @property
    def missing(self) -> bool:
        """Return whether data are missing: an expected reading, or a device gone quiet."""
        return any(a.rule.startswith(MISSING_RULES) for a in self.status.alerts)

    def matches(self, query: WorklistQuery) -> bool:
        """Return whether the row passes the query's search and every chosen filter."""
        checks = {"mine": self.mine, "unacknowledged": self.status.unacknowledged,
                  "missing": self.missing, "paused": self.status.paused}
        return all(checks[f] for f in query.filters) and _found(self.patient, query.text)

    def sort_key(self) -> tuple[int, float, str, str]:
        """Return the row's place: status, then the newest deciding event, then the name."""
        since = self.status.since
        return (STATUS_ORDER[self.status.shown], -since.timestamp() if since else 0.0,
                self.patient.family.casefold(), self.patient.given.casefold())


@dataclass(frozen=True)
class WorklistPage:
    """A page of the work list, and what the whole list holds."""

    rows: list[Row]
    query: WorklistQuery
    matching: int
    counts: dict[str, int] = field(default_factory=dict)  # shown status → patients (all)

    @property
    def pages(self) -> int:
        """Return how many pages the matching rows fill (at least one)."""
        return max(1, math.ceil(self.matching / self.query.size))


def worklist(session: Session, user: User, query: WorklistQuery, now: datetime,
             ) -> WorklistPage:
    """Return the page of the user's work list the query asks for."""
    everyone = build_rows(session, user, list(session.exec(visible_patients(user))), now)
    counts: dict[str, int] = {}
    for row in everyone:
        counts[row.status.shown] = counts.get(row.status.shown, 0) + 1
    matching = sorted((r for r in everyone if r.matches(query)), key=Row.sort_key)
    start = (query.page - 1) * query.size
    return WorklistPage(matching[start:start + query.size], query, len(matching), counts)


def rows_for(session: Session, user: User, patient_ids: Iterable[str], now: datetime,
             ) -> list[Row]:
    """Return the rows of some patients the user may see (a live update of a few rows)."""
    wanted = set(patient_ids)
    found = session.exec(visible_patients(user).where(col(Patient.id).in_(wanted)))
    return sorted(build_rows(session, user, list(found), now), key=Row.sort_key)


def build_rows(session: Session, user: User, patients: list[Patient], now: datetime,
               ) -> list[Row]:
    """Return the rows of these patients: status, who must act, the last reading's time."""
    ids = [p.id for p in patients]
    status = statuses(session, ids, now)
    monitoring = dict(session.exec(select(CareTeamMember.patient_id,
                                          CareTeamMember.organization_id).where(
        col(CareTeamMember.patient_id).in_(ids), CareTeamMember.role == "monitoring")).all())
    last = dict(session.exec(select(Observation.patient_id, func.max(Observation.effective))
                             .where(col(Observation.patient_id).in_(ids))
                             .group_by(col(Observation.patient_id))).all())
    rows = []
    for patient in patients:
        found = status[patient.id]
        owners = {a.id or 0: a.escalated_to or monitoring.get(patient.id, "")
                  for a in found.alerts}
        rows.append(Row(patient, found, owners, last.get(patient.id), user.organization_id))
    return rows


def _found(patient: Patient, text: str) -> bool:
    """Return whether a search text names the patient (name words, or CPR digits)."""
    if not text:
        return True
    if _CPR_RE.match(text):
        return patient.cpr.startswith(text.replace("-", ""))
    name = f"{patient.given} {patient.family}".casefold()
    return all(word in name for word in text.casefold().split())
