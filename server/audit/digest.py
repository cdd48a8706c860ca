"""The patient's access log as a digest: one group per person and day, in local time (pure).

A patient asks "who has looked at my data, and how much?", not "which request did what".
So the records of one person on one local day become one group that counts what they did
("looked at your measurements 3 times"). Live-update pushes and subscriptions are not
looks a person chose to make: they stay in the audit log and the administrator's view,
and are left out here (`is_live`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from telekol.server.audit.log import resource_kind
from telekol.server.models import AuditRecord

LIVE_ACTIONS = ("push", "subscribe")


@dataclass(frozen=True)
class Access:
    """What a person did, how often and through which door, within one group."""

    action: str
    kind: str  # server/audit/log.py resource_kind
    door: str
    refused: bool
    count: int


@dataclass(frozen=True)
class PersonDay:
    """Everything one person (as they were then) did to the patient's data on one day."""

    day: date
    user_id: int | None
    name: str  # the display name; "" for an organisation alone or a command-line operator
    role: str
    organization_id: str
    accesses: tuple[Access, ...]
    first_at: datetime
    last_at: datetime

    @property
    def total(self) -> int:
        """Return how many records the group stands for."""
        return sum(access.count for access in self.accesses)


def is_live(row: AuditRecord) -> bool:
    """Return whether a record is a live push or subscription rather than a look."""
    return row.action in LIVE_ACTIONS or row.door == "live"


def group_by_person_and_day(rows: Iterable[AuditRecord], zone: tzinfo) -> list[PersonDay]:
    """Group records by local day and person, newest first; live records are left out."""
    groups: dict[tuple[object, ...], list[AuditRecord]] = {}
    for row in sorted((r for r in rows if not is_live(r)), key=lambda r: r.id or 0,
                      reverse=True):
        person = (row.user_id, row.username, row.role, row.organization_id)
        groups.setdefault((row.at.astimezone(zone).date(), *person), []).append(row)
    return [_group(key[0], records) for key, records in groups.items()]  # type: ignore[arg-type]


def _group(day: date, records: Sequence[AuditRecord]) -> PersonDay:
    counts: dict[tuple[str, str, str, bool], int] = {}
    for row in records:  # newest first, so the newest kind of access is listed first
        key = (row.action, resource_kind(row.resource), row.door, row.outcome != "success")
        counts[key] = counts.get(key, 0) + 1
    newest = records[0]
    return PersonDay(
        day=day, user_id=newest.user_id, name=newest.display_name or "",
        role=newest.role or "", organization_id=newest.organization_id or "",
        accesses=tuple(Access(*key, count=n) for key, n in counts.items()),
        first_at=records[-1].at, last_at=newest.at)


def whole_days(rows: Sequence[AuditRecord], size: int,
               zone: tzinfo) -> tuple[list[AuditRecord], int | None]:
    """Return a page of at most `size` records ending at a day's end, and the next cursor.

    `rows` are newest first and up to `size + 1` long (one more tells that there are older
    ones). The oldest day on a full page may go on in the next one, so it moves there
    whole, unless it fills the page alone. The cursor is the id to read `before` next.
    """
    if len(rows) <= size:
        return list(rows), None
    page = list(rows[:size])
    cut = page[-1].at.astimezone(zone).date()
    earlier = [row for row in page if row.at.astimezone(zone).date() != cut]
    if earlier and rows[size].at.astimezone(zone).date() == cut:
        page = earlier
    return page, page[-1].id
