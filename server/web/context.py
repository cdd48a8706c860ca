"""Per-app services and the per-request database session.

A request works on one pooled database connection for its whole life: its session, the
audit records written after the response (server/web/auditing.py) and anything else it
reads or writes all go through `db()`. A request never asks the pool for a second
connection while holding one, so requests cannot starve each other of connections. When
none is free within the pool's wait (`DB_WAIT_SECONDS`), the request is answered 503 with
`Retry-After` (`busy`) instead of waiting on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session
from telekol.server.accounts.login import TokenSigner
from telekol.server.config import Settings
from telekol.server.metrics import POOL_TIMEOUTS
from telekol.server.web.errors import outcome_response

if TYPE_CHECKING:
    from telekol.server.web.live import LiveBridge

log = logging.getLogger("telekol.web")
DB_WAIT_SECONDS = 5.0  # longest a request waits for a database connection
RETRY_AFTER_SECONDS = 2
BUSY = "the server is busy; try again in a moment"


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
    """Return this request's database session, on the request's one connection."""
    if "db" not in g:
        connection: Connection = services().engine.connect()
        g.db_connection = connection
        # Bound to the connection, the session keeps it across commits and rollbacks
        # instead of handing it back to the pool and asking again.
        g.db = Session(bind=connection, expire_on_commit=False)
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    """Close the request's session and give its connection back, if one was opened."""
    session, connection = g.pop("db", None), g.pop("db_connection", None)
    if session is not None:
        session.close()
    if connection is not None:
        connection.close()


def door_of(path: str) -> str:
    """Return the door a request came through: api, fhir or ui."""
    if path == "/api" or path.startswith("/api/"):
        return "api"
    return "fhir" if path == "/fhir" or path.startswith("/fhir/") else "ui"


def unavailable(reason: str, page_text: str) -> Response:
    """Answer 503 with Retry-After in the door's format (JSON, OperationOutcome or text)."""
    door = door_of(request.path)
    if door == "fhir":
        response = outcome_response(503, "transient", reason)
    elif door == "api":
        response = jsonify(error=reason)
    else:
        response = Response(page_text, mimetype="text/plain")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def busy(_error: Exception) -> Response:
    """Answer a request that found no free database connection in time (pool timeout)."""
    POOL_TIMEOUTS.inc()
    log.warning("no database connection free within %.0f s; %s %s answered 503",
                DB_WAIT_SECONDS, request.method, request.endpoint)
    return unavailable(BUSY, _("The server is busy. Please try again in a moment."))


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
