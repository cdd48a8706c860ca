"""Live connections re-checked after they joined: sessions that ended, patients out of sight.

A connection joins its rooms once, at connect. Two things can change afterwards, and both
are checked here, in every web process for its own connections:

- **The session ends** (logout, deactivation, password change: the user's session version
  moves, in any process, the CLI included). `SessionWatch` reads the connected users'
  versions every `RECHECK_SECONDS` and disconnects each connection whose user is no longer
  active or whose version is not the one it connected with.
- **A patient leaves an organisation's sight** (sharing consent withdrawn, a handover that
  takes the organisation off the team). Rooms are per organisation, so the room stays;
  instead `within_sight` readdresses every batch just before it is pushed: an `org:` room
  keeps an event about a patient only if that organisation sees the patient now
  (`access.team_organizations`, one query per batch). The publisher addressed the event
  from what it knew at its commit; this makes the last word the database's at push time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telekol.server.care.access import team_organizations
from telekol.server.models import User

log = logging.getLogger("telekol.live")
RECHECK_SECONDS = 1.0  # a session that ended stops receiving within about this (+ a push)


def patient_of(event: dict[str, Any]) -> str | None:
    """Return the id of the patient an internal event is about, if it names one."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    patient = data.get("patient") if isinstance(data, dict) else None
    if isinstance(patient, dict) and isinstance(patient.get("id"), str):
        return patient["id"]
    rooms = [r for r in event.get("rooms", []) if isinstance(r, str)]
    return next((r.removeprefix("patient:") for r in rooms if r.startswith("patient:")), None)


def within_sight(engine: Engine, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the batch with each event's `org:` rooms cut to those that see its patient now."""
    patients = {p for p in map(patient_of, batch) if p}
    if not patients:
        return batch
    with Session(engine) as session:
        seeing = team_organizations(session, patients)
    readdressed = []
    for event in batch:
        patient = patient_of(event)
        if patient is not None:
            allowed = {f"org:{org}" for org in seeing.get(patient, [])}
            rooms = [r for r in event.get("rooms", []) if isinstance(r, str)
                     and (not r.startswith("org:") or r in allowed)]
            event = {**event, "rooms": rooms}
        readdressed.append(event)
    return readdressed


class SessionWatch:
    """Disconnect, within seconds, every connection whose user's session has ended."""

    def __init__(self, engine: Engine, sessions: Callable[[], dict[str, tuple[int, int]]],
                 disconnect: Callable[[str], None]) -> None:
        self.engine = engine
        self.sessions = sessions  # sid -> (user id, session version at connect)
        self.disconnect = disconnect
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="live-session-watch",
                                       daemon=True)

    def start(self) -> None:
        """Start checking in the background."""
        self.thread.start()

    def stop(self) -> None:
        """Stop checking."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def ended(self) -> list[str]:
        """Return the connections whose user is gone, inactive, or on a newer version."""
        connected = self.sessions()
        if not connected:
            return []
        ids = {user_id for user_id, _version in connected.values()}
        with Session(self.engine) as session:
            current = {row[0]: (row[1], row[2]) for row in session.exec(
                select(User.id, User.active, User.token_version).where(col(User.id).in_(ids)))}
        return [sid for sid, (user_id, version) in connected.items()
                if current.get(user_id) != (True, version)]

    def check_once(self) -> None:
        """Disconnect the connections whose session has ended."""
        for sid in self.ended():
            log.info("live session ended; disconnecting sid %s", sid)
            self.disconnect(sid)

    def _run(self) -> None:
        while not self._stop.wait(RECHECK_SECONDS):
            try:
                self.check_once()
            except Exception as error:  # the database may be away for a moment
                log.warning("could not re-check live sessions (%s)", type(error).__name__)
