"""GET /healthz: 200 when the database, the broker and the gateway all work."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from telekol.server.web.context import db, services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Report each part's state; 503 naming the failing parts otherwise."""
    parts = {"database": _database(), **_bridge_parts()}
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


def _bridge_parts() -> dict[str, str]:
    bridge = services().bridge
    if bridge is None:
        return {"broker": "not connected (live bridge disabled)", "gateway": "unknown"}
    return {"broker": bridge.broker_state(), "gateway": bridge.gateway_state()}
