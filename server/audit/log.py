"""The audit log: who did what to which patient's data, through which door, in a keyed chain.

Every door appends here. Records are never changed: the database refuses UPDATE and DELETE
on the table (triggers made by server/migrate.py), and each record's hash is an HMAC-SHA256,
under a key kept outside the database (`use_key`), over the previous record's hash, its place
in the chain (`seq`) and its own fields. So someone who can write the database but does not
hold the key cannot change, delete or insert a record, nor recompute the chain after doing
so, without `verify` finding where. Removing the newest records is found by comparing the
chain with its head as anchored outside the database (server/audit/anchor.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.models import AuditRecord, Organization, User

GENESIS = "0" * 64  # the prev_hash of the first record
LEGACY = 1  # records hashed with unkeyed SHA-256, before migration e5a1d17c0b2f
KEYED = 2  # HMAC-SHA256 under the audit key, `seq` included
SYSTEM_DOORS = ("mqtt", "scheduler")  # the platform's own acts (server/audit/system.py)
# PostgreSQL advisory lock that serialises appends ("TKOL" in ASCII).
APPEND_LOCK = 0x544B4F4C
MAX_LIMIT = 1000
_VERIFY_BATCH = 1000
_ATTEMPTS = 5
_SQLITE_TURN = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LENGTHS = {"username": 64, "display_name": 200, "role": 20, "organization_id": 64,
            "patient_id": 64, "action": 20, "resource": 300, "door": 10, "outcome": 20,
            "detail": 500}


@dataclass(frozen=True)
class Actor:
    """Who acted, as they were at the time: a user, or an organisation alone (a live push)."""

    user_id: int | None = None
    username: str | None = None
    display_name: str | None = None
    role: str | None = None
    organization_id: str | None = None

    @classmethod
    def of(cls, user: User | None) -> Actor:
        """Return the actor for a signed-in user (nobody for None)."""
        if user is None:
            return cls()
        return cls(user.id, user.username, user.display_name, user.role, user.organization_id)


@dataclass(frozen=True)
class Entry:
    """One access to append: who, which patient, what, through which door, how it went."""

    actor: Actor
    patient_id: str | None
    action: str  # read | search | create | update | delete | export | subscribe | push ...
    resource: str
    door: str  # ui | api | fhir | live | cli | export
    outcome: str = "success"  # success | denied | failed
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking the chain: intact, or where it first breaks and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""
    last_hash: str = GENESIS  # of the last record that checked out
    anchors: int = 0  # anchored heads found in the chain as anchored


@dataclass(frozen=True)
class Anchor:
    """A chain head as recorded outside the database: the record at `seq` had `hash`."""

    seq: int
    hash: str
    at: str = ""  # when it was anchored (RFC 3339), for the reader


_KEY: list[bytes] = []  # the process's audit key, set once at start (`use_key`)


def use_key(key: str) -> None:
    """Key the chain with `key` in this process (Settings.audit_key; every door calls it)."""
    if not key:
        raise ValueError("the audit key is empty")
    _KEY[:] = [key.encode()]


def mac(message: bytes) -> str:
    """Return HMAC-SHA256 (hex) of `message` under the process's audit key."""
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def _key() -> bytes:
    if not _KEY:
        # A process that did not say: the key its environment names (TELEKOL_AUDIT_KEY or
        # the data dir's audit_key), the same one its server and gateway use.
        from telekol.server.config import load_settings

        use_key(load_settings().audit_key)
    return _KEY[0]


def outcome_for(status: int) -> str:
    """Return the outcome of an HTTP status: success, denied (401/403/404) or failed."""
    if status < 400:
        return "success"
    return "denied" if status in (401, 403, 404) else "failed"


def append(session: Session, entries: Sequence[Entry]) -> list[AuditRecord]:
    """Append records to the chain in the caller's transaction (commit to keep them)."""
    if not entries:
        return []
    previous, seq = _tail(session)
    now, rows = utcnow(), []
    for entry in entries:
        seq += 1
        row = AuditRecord(**_fields(entry, now), seq=seq, scheme=KEYED, prev_hash=previous,
                          hash="")
        row.hash = chain_hash(previous, row)
        session.add(row)
        session.flush()  # one by one, so ids follow the chain
        previous = row.hash
        rows.append(row)
    return rows


def _tail(session: Session) -> tuple[str, int]:
    """Take the append lock and return the last record's hash and seq."""
    _serialise(session)
    last = session.exec(select(AuditRecord.hash, AuditRecord.seq).order_by(
        col(AuditRecord.id).desc()).limit(1)).first()
    return (last[0], last[1]) if last else (GENESIS, 0)


def record(engine: Engine, entries: Sequence[Entry]) -> None:
    """Append in a transaction of its own, retrying when another writer won the tail."""
    with Session(engine, expire_on_commit=False) as session:
        record_in(session, entries)


def record_in(session: Session, entries: Sequence[Entry]) -> None:
    """Append and commit on `session`, which has no transaction open; retry as `record`."""
    with _turn(session):
        for attempt in range(_ATTEMPTS):
            try:
                append(session, entries)
                session.commit()
                return
            except (IntegrityError, OperationalError):
                # The unique prev_hash refused a fork, or SQLite refused a stale snapshot.
                session.rollback()
                if attempt == _ATTEMPTS - 1:
                    raise


def _turn(session: Session) -> AbstractContextManager[object]:
    # SQLite has one writer at a time and makes the others sleep and poll for the lock,
    # which lets some wait far longer than others: a process's own threads take turns here
    # instead, so only processes poll.
    return _SQLITE_TURN if session.get_bind().dialect.name == "sqlite" else nullcontext()


def append_many(session: Session, entries: Sequence[Entry]) -> int:
    """Append records to the chain with one INSERT, in the caller's transaction.

    The same chain as `append` (ids follow it: the rows go in in chain order while the
    append lock is held), without building ORM rows or flushing one by one.
    """
    if not entries:
        return 0
    previous, seq = _tail(session)
    now, rows = utcnow(), []
    for entry in entries:
        seq += 1
        fields = _fields(entry, now)
        fields.update(seq=seq, scheme=KEYED, prev_hash=previous)
        fields["hash"] = chain_hash(previous, cast(AuditRecord, _Row(fields)))
        previous = fields["hash"]
        rows.append(fields)
    session.execute(insert(AuditRecord.__table__), rows)  # type: ignore[attr-defined]
    return len(rows)


def record_many(engine: Engine, entries: Sequence[Entry]) -> None:
    """As `record`, with one INSERT for all the entries (`append_many`)."""
    with Session(engine, expire_on_commit=False) as session, _turn(session):
        for attempt in range(_ATTEMPTS):
            try:
                append_many(session, entries)
                session.commit()
                return
            except (IntegrityError, OperationalError):
                session.rollback()  # another writer won the tail: read it again
                if attempt == _ATTEMPTS - 1:
                    raise


class _Row:
    """Attribute access to a record's fields, for `chain_hash`."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def _serialise(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    elif dialect == "sqlite":
        # pysqlite begins the transaction at the first write, and a WAL read snapshot cannot
        # later become a write: take the write lock (no rows change) before reading the tail.
        session.execute(text("UPDATE auditrecord SET id = id WHERE 0"))


def _fields(entry: Entry, at: datetime) -> dict[str, Any]:
    actor = entry.actor
    fields: dict[str, Any] = {
        "at": at, "user_id": actor.user_id, "username": actor.username,
        "display_name": actor.display_name, "role": actor.role,
        "organization_id": actor.organization_id, "patient_id": entry.patient_id,
        "action": entry.action, "resource": entry.resource, "door": entry.door,
        "outcome": entry.outcome, "status": entry.status, "detail": entry.detail}
    for name, limit in _LENGTHS.items():
        if isinstance(fields[name], str):
            # A hostile path may carry NUL, which PostgreSQL refuses in text: the record of
            # that request must still be written, so control characters are kept as escapes.
            fields[name] = _CONTROL.sub(_escaped, fields[name])[:limit]
    return fields


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def chain_hash(previous: str, row: AuditRecord) -> str:
    """Return the record's hash (hex): HMAC-SHA256 under the audit key over the previous
    hash and a canonical JSON of the record with its `seq` (unkeyed SHA-256 for LEGACY)."""
    fields = {"at": row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              **{name: getattr(row, name) for name in (
                  "user_id", "username", "display_name", "role", "organization_id",
                  "patient_id", "action", "resource", "door", "outcome", "status", "detail")}}
    if getattr(row, "scheme", KEYED) == LEGACY:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        return hashlib.sha256((previous + canonical).encode()).hexdigest()
    fields["seq"] = row.seq
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return mac((previous + canonical).encode())


def verify(session: Session, anchors: Sequence[Anchor] = ()) -> ChainCheck:
    """Walk the chain in id order, in batches, and report the first record that breaks it.

    Each anchor must name a record of the chain by its seq and hash; an anchor beyond the
    chain's end means its newest records were removed.
    """
    anchored = {anchor.seq: anchor for anchor in anchors}
    walk = _Walk(anchored)
    last_id = 0
    while True:
        batch = session.exec(select(AuditRecord).where(col(AuditRecord.id) > last_id).order_by(
            col(AuditRecord.id)).limit(_VERIFY_BATCH)).all()
        if not batch:
            return walk.end()
        for row in batch:
            broken = walk.step(row)
            if broken is not None:
                return broken
            last_id = row.id or 0


class _Walk:
    """The state of `verify` between records: what the next one must follow."""

    def __init__(self, anchored: dict[int, Anchor]) -> None:
        self.anchored, self.expected, self.seq, self.checked = anchored, GENESIS, 0, 0
        self.keyed, self.matched = False, 0

    def step(self, row: AuditRecord) -> ChainCheck | None:
        reason = self._problem(row)
        if reason:
            return ChainCheck(False, self.checked, row.id, reason, self.expected, self.matched)
        self.expected, self.seq, self.checked = row.hash, row.seq, self.checked + 1
        self.keyed = self.keyed or row.scheme != LEGACY
        self.matched += row.seq in self.anchored
        return None

    def _problem(self, row: AuditRecord) -> str:
        if row.prev_hash != self.expected or row.seq != self.seq + 1:
            return "the record before it is missing, or it was inserted out of the chain"
        if row.scheme == LEGACY and self.keyed:
            return "an unkeyed record after keyed ones: the chain was rewritten"
        if not hmac.compare_digest(chain_hash(row.prev_hash, row), row.hash):
            return "the record was changed, or the chain rewritten without the audit key"
        anchor = self.anchored.get(row.seq)
        if anchor is not None and anchor.hash != row.hash:
            return (f"it differs from the head anchored at {anchor.at or 'an earlier time'}: "
                    "the chain was rewritten")
        return ""

    def end(self) -> ChainCheck:
        beyond = [a for a in self.anchored.values() if a.seq > self.seq]
        if beyond:
            last = max(beyond, key=lambda a: a.seq)
            return ChainCheck(False, self.checked, None,
                              f"truncated: the head anchored at {last.at or 'an earlier time'} "
                              f"is record {last.seq}, the chain ends at {self.seq}",
                              self.expected, self.matched)
        return ChainCheck(True, self.checked, last_hash=self.expected, anchors=self.matched)


def search(session: Session, *, patient_id: str | None = None, user_id: int | None = None,
           organization_id: str | None = None, action: str | None = None,
           door: str | None = None, since: datetime | None = None,
           until: datetime | None = None, before_id: int | None = None,
           limit: int = 100) -> list[AuditRecord]:
    """Return the records matching every given criterion, newest first (keyset `before_id`)."""
    query = select(AuditRecord)
    for column, value in ((AuditRecord.patient_id, patient_id), (AuditRecord.user_id, user_id),
                          (AuditRecord.organization_id, organization_id),
                          (AuditRecord.action, action), (AuditRecord.door, door)):
        if value is not None:
            query = query.where(col(column) == value)
    if since is not None:
        query = query.where(col(AuditRecord.at) >= since)
    if until is not None:
        query = query.where(col(AuditRecord.at) < until)
    if before_id is not None:
        query = query.where(col(AuditRecord.id) < before_id)
    limit = max(1, min(limit, MAX_LIMIT))
    return list(session.exec(query.order_by(col(AuditRecord.id).desc()).limit(limit)).all())


def access_log(session: Session, patient_id: str, *, before_id: int | None = None,
               limit: int = 100, without_live: bool = False) -> list[AuditRecord]:
    """Return who accessed a patient's data, newest first (the patient's own view).

    `without_live` leaves out live-update pushes and subscriptions (the live door records
    nothing else), so they do not crowd out the looks a person chose to make, and what the
    platform did by itself (devices' stored batches, the scheduler: SYSTEM_DOORS).
    """
    if not without_live:
        return search(session, patient_id=patient_id, before_id=before_id, limit=limit)
    query = select(AuditRecord).where(col(AuditRecord.patient_id) == patient_id,
                                      col(AuditRecord.door).not_in(("live", *SYSTEM_DOORS)),
                                      col(AuditRecord.action).not_in(("push", "subscribe")))
    if before_id is not None:
        query = query.where(col(AuditRecord.id) < before_id)
    limit = max(1, min(limit, MAX_LIMIT))
    return list(session.exec(query.order_by(col(AuditRecord.id).desc()).limit(limit)).all())


def organization_names(session: Session, rows: Iterable[AuditRecord]) -> dict[str, str]:
    """Return the names of the organisations the records name (by id)."""
    ids = {row.organization_id for row in rows if row.organization_id}
    if not ids:
        return {}
    found = session.exec(select(Organization.id, Organization.name).where(
        col(Organization.id).in_(ids))).all()
    return dict(found)


def resource_kind(resource: str) -> str:
    """Return the kind of thing a resource string names: "Observation" for "Observation?...".

    A refused request that noted nothing is recorded with its path ("/patients/..."): its
    kind is "Page", so no screen shows a raw path.
    """
    if resource.startswith("/"):
        return "Page"
    return resource.split("?", 1)[0].split("/", 1)[0] or resource


def record_view(row: AuditRecord) -> dict[str, Any]:
    """Return a record as JSON for the API and the command line."""
    return {"id": row.id, "at": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "user_id": row.user_id, "username": row.username,
            "display_name": row.display_name, "role": row.role,
            "organization_id": row.organization_id, "patient_id": row.patient_id,
            "action": row.action, "resource": row.resource, "door": row.door,
            "outcome": row.outcome, "status": row.status, "detail": row.detail,
            "seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash}
