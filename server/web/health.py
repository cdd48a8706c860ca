"""GET /healthz: 200 when the database, the broker and the gateway all work."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from telekol.server.ingest.gateway_health import gateway_state
from telekol.server.web.context import db, services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Report each part's state; 503 naming the failing parts otherwise."""
    parts = {"database": _database(), "broker": _broker(), "gateway": _gateways()}
    failing = sorted(name for name, state in parts.items() if state != "ok")
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", **parts}
    if failing:
        body["failing"] = failing
    return jsonify(body), 200 if not failing else 503


def _database() -> str:
    try:
        db().exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def _broker() -> str:
    bridge = services().bridge
    return "not connected (live bridge disabled)" if bridge is None else bridge.broker_state()


def _gateways() -> str:
    # The gateways' heartbeats and lease are in the database (server/ingest/lease.py).
    try:
        return gateway_state(db().connection(), services().settings.gateway_lease_seconds)
    except Exception as error:
        db().rollback()
        return f"error: {type(error).__name__}"
