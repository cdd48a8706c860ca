"""Anchor the audit chain's head outside the database, so removing its newest records shows.

An anchor is one line `telekol-audit-anchor seq=N hash=H at=T mac=M`: the record at place
N of the chain had hash H at instant T, with M an HMAC under the audit key over the rest (a
line written by someone without the key is refused). Lines are appended to a file in the
data dir (`Settings.audit_anchor_file`, opened O_APPEND, one write per line) and, when
configured, sent to syslog as well, where a copy outside the machine can be kept. The file
is what `telekol audit verify` reads back; `--anchors FILE` reads another copy (a syslog
export) the same way. `Anchorer` anchors at an interval and once more when it stops.
"""

from __future__ import annotations

import hmac
import logging
import logging.handlers
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telekol.server.audit import log as audit
from telekol.server.audit.log import Anchor, ChainCheck, mac
from telekol.server.config import Settings
from telekol.server.models import AuditRecord

log = logging.getLogger("telekol.audit.anchor")
TAG = "telekol-audit-anchor"
_LINE = re.compile(TAG + r" seq=(?P<seq>\d{1,18}) hash=(?P<hash>[0-9a-f]{64}) "
                   r"at=(?P<at>\S{1,40}) mac=(?P<mac>[0-9a-f]{64})")


def head(session: Session) -> Anchor | None:
    """Return the chain's newest record as an anchor (None for an empty chain)."""
    row = session.exec(select(AuditRecord.seq, AuditRecord.hash).order_by(
        col(AuditRecord.id).desc()).limit(1)).first()
    if row is None:
        return None
    return Anchor(row[0], row[1], datetime.now(UTC).isoformat().replace("+00:00", "Z"))


def line(anchor: Anchor) -> str:
    """Return the anchor as the line that is written, MAC included."""
    return f"{TAG} seq={anchor.seq} hash={anchor.hash} at={anchor.at} mac={_mac(anchor)}"


def _mac(anchor: Anchor) -> str:
    return mac(f"{anchor.seq}:{anchor.hash}:{anchor.at}".encode())


def parse(lines: Iterable[str]) -> tuple[list[Anchor], int]:
    """Return the anchors found in `lines` (syslog prefixes allowed) and how many lines
    named an anchor whose MAC is wrong (forged, or made under another key)."""
    found, forged = [], 0
    for text in lines:
        match = _LINE.search(text)
        if match is None:
            continue
        anchor = Anchor(int(match["seq"]), match["hash"], match["at"])
        if hmac.compare_digest(_mac(anchor), match["mac"]):
            found.append(anchor)
        else:
            forged += 1
    return found, forged


def read(path: Path) -> tuple[list[Anchor], int]:
    """Return the anchors kept in `path` (none when it does not exist yet), as `parse`."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return parse(handle)
    except FileNotFoundError:
        return [], 0


def append(path: Path, anchor: Anchor) -> None:
    """Append the anchor's line to `path` (created 0600), in one write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line(anchor) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_anchored(session: Session, settings: Settings,
                    extra: Iterable[Anchor] = ()) -> ChainCheck:
    """Verify the chain against the anchors kept in the data dir (and `extra` ones); an
    anchor line without the key's MAC breaks the check too."""
    anchors, forged = read(settings.audit_anchor_file)
    check = audit.verify(session, [*anchors, *extra])
    if forged and check.ok:
        return replace(check, ok=False, reason=f"{forged} anchor lines do not carry the audit "
                       "key's MAC (forged, or written under another key)")
    return check


def syslog_handler(target: str) -> logging.Handler:
    """Return a syslog handler for "/dev/log" (a socket path) or "host:port" (UDP)."""
    if target.startswith("/"):
        return logging.handlers.SysLogHandler(address=target)
    host, _, port = target.rpartition(":")
    return logging.handlers.SysLogHandler(address=(host or "localhost", int(port or 514)))


class Anchorer:
    """Anchor the head when it has moved: every `interval` seconds and once at `stop`."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.path = engine, settings.audit_anchor_file
        self.interval = settings.audit_anchor_seconds
        self.syslog = syslog_handler(settings.audit_anchor_syslog) \
            if settings.audit_anchor_syslog else None
        self.last: tuple[int, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)

    def anchor(self) -> Anchor | None:
        """Anchor the current head unless it is the one anchored last; return it."""
        with Session(self.engine) as session:
            current = head(session)
        if current is None or (current.seq, current.hash) == self.last:
            return None
        append(self.path, current)
        if self.syslog is not None:
            self.syslog.emit(logging.makeLogRecord({"msg": line(current), "levelno": 20,
                                                    "levelname": "INFO"}))
        self.last = (current.seq, current.hash)
        return current

    def start(self) -> None:
        """Anchor now and then every `interval` seconds on a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and anchor the head once more (a clean shutdown)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._safely()
        if self.syslog is not None:
            self.syslog.close()

    def _run(self) -> None:
        while True:
            self._safely()
            if self._stop.wait(self.interval):
                return

    def _safely(self) -> None:
        try:
            self.anchor()
        except Exception:  # the database or the disk is away: try again next time
            log.exception("could not anchor the audit chain's head")
