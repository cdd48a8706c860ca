"""Authentication for every door: session cookie, or `Authorization: Bearer <token>`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Request, current_app, jsonify, redirect, request, session, url_for
from flask_login import current_user, login_user
from sqlalchemy import update
from sqlmodel import col, select
from telekol.server.accounts import SESSION_LIFETIME, LoginThrottle, authenticate
from telekol.server.db import utcnow
from telekol.server.models import User
from telekol.server.web.context import db, services
from telekol.server.web.extensions import login_manager

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

# The session key holding the user's token version: a password change or deactivation
# bumps the version and so ends every browser session too.
SESSION_VERSION_KEY = "_tv"


def cookie_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the session cookie configuration (Secure only behind HTTPS)."""
    secure = (os.environ if environ is None else environ).get("TELEKOL_SECURE_COOKIES") == "1"
    return {"SESSION_COOKIE_SECURE": secure, "REMEMBER_COOKIE_SECURE": secure,
            "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME}


def clock() -> datetime:
    """Return now; tests set app.config["TELEKOL_CLOCK"] to a function of their own."""
    now: Callable[[], datetime] = current_app.config.get("TELEKOL_CLOCK") or utcnow
    return now()


def login_throttle() -> LoginThrottle:
    """Return this app's per-client failed-login throttle."""
    return current_app.extensions.setdefault("telekol_login_throttle", LoginThrottle())


def attempt_login(username: str, password: str) -> tuple[User | None, int]:
    """Check credentials for either door: (user or None, seconds to wait when throttled)."""
    client = request.remote_addr or "unknown"
    now = clock()
    throttle = login_throttle()
    wait = throttle.retry_after(client, now)
    if wait:
        return None, wait
    user = authenticate(db(), username, password, now=now)
    if user is None:
        # The client address only: a username may be a CPR number typed in the wrong field.
        log.info("failed login from %s", client)
        throttle.failed(client, now)
    return user, 0


def start_session(user: User) -> None:
    """Log `user` into a bounded browser session tied to their token version."""
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
    login_user(user)
    session[SESSION_VERSION_KEY] = user.token_version


def end_sessions(user: User) -> None:
    """End every browser session and bearer token of `user` (logout): move their version.

    One atomic UPDATE, so two logouts at once both count; live connections notice within
    seconds (server/web/live.py re-checks them).
    """
    db().connection().execute(update(User).where(col(User.id) == user.id).values(
        token_version=col(User.token_version) + 1))
    db().commit()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the session's user if still active (not when a bearer token is sent)."""
    if not user_id.isdigit() or bearer_token(request):
        return None
    user = db().get(User, int(user_id))
    if user is None or not user.active or session.get(SESSION_VERSION_KEY) != user.token_version:
        return None
    return user


@login_manager.request_loader
def load_user_from_bearer(req: Request) -> User | None:
    """Return the user named by a valid bearer token."""
    token = bearer_token(req)
    return user_for_token(token) if token else None


def bearer_token(req: Request) -> str | None:
    """Return the bearer token of a request, if any."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def user_for_token(token: str) -> User | None:
    """Return the active user a token belongs to."""
    claims = services().tokens.claims(token)
    user = db().get(User, claims[0]) if claims is not None else None
    if user is None or not user.active or user.token_version != claims[1]:  # type: ignore[index]
        return None
    return user


@login_manager.unauthorized_handler
def unauthorized():  # type: ignore[no-untyped-def]
    """Answer 401 on machine doors and send browsers to the login page."""
    if request.path.startswith("/fhir"):
        from telekol.server.web.fhir_api import outcome_response

        response = outcome_response(401, "login", "Authentication required")
    elif request.path.startswith("/api"):
        response = jsonify(error="authentication required")
        response.status_code = 401
    else:
        return redirect(url_for("ui.login", next=request.full_path))
    response.headers["WWW-Authenticate"] = 'Bearer realm="telekol"'
    return response


@bp.post("/api/auth/token")
def issue_token():  # type: ignore[no-untyped-def]
    """Exchange a username and password for a bearer token."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("username", "password")):
        return jsonify(error="send JSON {\"username\": ..., \"password\": ...}"), 400
    user, wait = attempt_login(body["username"], body["password"])
    if wait:
        response = jsonify(error="too many failed logins; try again later")
        response.status_code = 429
        response.headers["Retry-After"] = str(wait)
        return response
    if user is None:  # also when the account is locked: the lock is not revealed
        return jsonify(error="invalid username or password"), 401
    tokens = services().tokens
    return jsonify(access_token=tokens.issue(user), token_type="Bearer",
                   expires_in=tokens.ttl_seconds)


def find_user(username: str) -> User | None:
    """Return a user by username."""
    return db().exec(select(User).where(User.username == username)).first()


def signed_in() -> User | None:
    """Return the authenticated user of this request, if any."""
    return current_user if current_user.is_authenticated else None  # type: ignore[return-value]


def the_user() -> User:
    """Return the authenticated user of a view that requires login."""
    user = signed_in()
    if user is None:
        raise RuntimeError("the_user() called in a view that does not require login")
    return user
