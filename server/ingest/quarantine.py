"""Quarantine with a quota per device: one device password cannot fill the disk.

Every rejected payload is answered `rejected` with its reasons whatever happens here. What is
kept of it: its first `prefix_bytes` exactly as received, with the whole payload's size and
SHA-256. A device keeps at most `per_hour` rejected messages in the last hour and at most
`bytes_per_day` payload bytes in the last 24 hours; beyond that a rejection is only counted
(QuarantineOverflow: how many, how many bytes, when, the last reasons), never kept. Accepted
readings never pass through here. With several gateways the usage is read once per batch, so
two gateways storing rejections of the same device at the same moment may each overshoot
by at most one batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from telekol.server.config import Settings
from telekol.server.models import QuarantinedMessage, QuarantineOverflow

_KEPT = QuarantinedMessage.__table__  # type: ignore[attr-defined]
_OVERFLOW = QuarantineOverflow.__table__  # type: ignore[attr-defined]
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@dataclass(frozen=True)
class QuarantineQuota:
    """What quarantine keeps per device (defaults documented in docs/devices.md)."""

    prefix_bytes: int = 4096
    per_hour: int = 60
    bytes_per_day: int = 1_048_576

    @classmethod
    def from_settings(cls, settings: Settings) -> QuarantineQuota:
        """Return the quota configured by TELEKOL_QUARANTINE_* settings."""
        return cls(settings.quarantine_prefix_bytes, settings.quarantine_per_hour,
                   settings.quarantine_bytes_per_day)


def quarantine_row(*, received_at: datetime, topic: str, device_id: str | None,
                   msg_id: str | None, errors: list[str], raw: bytes,
                   prefix_bytes: int) -> dict[str, Any]:
    """Return the row that keeps a rejected payload: a bounded prefix, its size and hash."""
    return {"received_at": received_at, "topic": topic[:300], "device_id": device_id or None,
            "msg_id": msg_id, "errors": errors, "payload": raw[:prefix_bytes],
            "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def admit(session: Session, quota: QuarantineQuota,
          rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the rows within each device's quota; count the others as overflow."""
    if not rows:
        return []
    # The windows end at the newest receipt, on the clock that stamps the rows.
    now = max(row["received_at"] for row in rows)
    usage = _usage(session, {row["device_id"] for row in rows}, now)
    kept, over = [], []
    for row in rows:
        count, stored = usage.get(row["device_id"], (0, 0))
        if count < quota.per_hour and stored + len(row["payload"]) <= quota.bytes_per_day:
            usage[row["device_id"]] = (count + 1, stored + len(row["payload"]))
            kept.append(row)
        else:
            over.append(row)
    _count_overflow(session, over)
    return kept


def _usage(session: Session, devices: set[str | None],
           now: datetime) -> dict[str | None, tuple[int, int]]:
    """Return per device: rejections kept in the last hour, payload bytes in the last day."""
    day_ago, hour_ago = now - DAY, now - HOUR
    named = {d for d in devices if d is not None}
    where = col(_KEPT.c.device_id).in_(named)
    if None in devices:
        where = where | _KEPT.c.device_id.is_(None)
    rows = session.execute(
        select(_KEPT.c.device_id,
               func.count(case((_KEPT.c.received_at > hour_ago, 1))),
               func.coalesce(func.sum(func.length(_KEPT.c.payload)), 0))
        .where(where, _KEPT.c.received_at > day_ago).group_by(_KEPT.c.device_id))
    return {device: (int(count), int(stored)) for device, count, stored in rows}


def _count_overflow(session: Session, rows: list[dict[str, Any]]) -> None:
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row["device_id"] or ""
        found = totals.setdefault(key, {"device_id": key, "dropped": 0, "dropped_bytes": 0,
                                        "first_at": row["received_at"]})
        found["dropped"] += 1
        found["dropped_bytes"] += row["size"]
        found["last_at"], found["last_errors"] = row["received_at"], row["errors"]
    if not totals:
        return
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(_OVERFLOW)
    statement = statement.on_conflict_do_update(index_elements=[_OVERFLOW.c.device_id], set_={
        "dropped": _OVERFLOW.c.dropped + statement.excluded.dropped,
        "dropped_bytes": _OVERFLOW.c.dropped_bytes + statement.excluded.dropped_bytes,
        "last_at": statement.excluded.last_at, "last_errors": statement.excluded.last_errors})
    session.execute(statement, list(totals.values()))
