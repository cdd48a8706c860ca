"""Per-app services and the per-request database session."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlmodel import Session
from telekol.server.accounts import TokenSigner
from telekol.server.config import Settings

if TYPE_CHECKING:
    from telekol.server.web.live import LiveBridge

log = logging.getLogger("telekol.web")


@dataclass
class AppServices:
    """What every view needs: settings, the engine, the token signer, the live bridge."""

    settings: Settings
    engine: Engine
    tokens: TokenSigner
    bridge: LiveBridge | None = None


def services() -> AppServices:
    """Return the current app's services."""
    return current_app.extensions["telekol"]


def db() -> Session:
    """Return this request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = Session(services().engine, expire_on_commit=False)
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    """Close the request's session, if one was opened."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


def publish(batch: list[dict[str, Any]]) -> None:
    """Push live events after the commit to every web process (through the broker).

    Without a bridge (unit tests: create_app(live=False)) they go straight to this
    process's Socket.IO. The data are stored already, so a screen that misses an event
    catches up on its next load; a failure here is logged, never raised.
    """
    if not batch:
        return
    try:
        bridge = services().bridge
        if bridge is not None:
            bridge.publish(batch)
            return
        from telekol.server.web.extensions import socketio

        for event in batch:
            socketio.emit(event["type"], event["data"], to=event["rooms"], namespace="/live")
    except Exception:
        log.exception("could not push %d live event(s)", len(batch))
