"""Authentication for every door: session cookie, or `Authorization: Bearer <token>`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Any

from flask import Blueprint, Request, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user
from sqlalchemy import update
from sqlmodel import col, select
from telekol.server.accounts.login import SESSION_LIFETIME, log_in
from telekol.server.accounts.login_throttle import AddressThrottle
from telekol.server.accounts.password_policy import N_
from telekol.server.db import utcnow
from telekol.server.models import User
from telekol.server.web import login_devices
from telekol.server.web.context import db, services
from telekol.server.web.errors import outcome_response
from telekol.server.web.extensions import login_manager

bp = Blueprint("auth", __name__)
# Told plainly, in the reader's language, at both doors (OWASP ASVS 2.2.1 asks for lock-out
# that is not a denial of service: the delay ends by itself, an administrator can lift it).
LOCKED = N_("This account is temporarily locked after too many failed logins. Try again in "
            "%(minutes)d minutes, or ask an administrator to unlock it.")
log = logging.getLogger(__name__)

# The session key holding the user's session version: logout, a password change or deactivation
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


def login_throttle() -> AddressThrottle:
    """Return this app's per-address and per-network failed-login throttle."""
    return current_app.extensions.setdefault("telekol_login_throttle", AddressThrottle())


@dataclass(frozen=True)
class Attempt:
    """A login attempt at either door: the user, or a wait for the address or the account."""

    user: User | None
    wait: int = 0  # seconds this address must wait (429)
    locked_until: datetime | None = None  # the account waits out a delay (told plainly)


def attempt_login(username: str, password: str, *, browser: bool = False) -> Attempt:
    """Check credentials for either door; a `browser` may show a device cookie."""
    client = request.remote_addr or "unknown"
    now = clock()
    throttle = login_throttle()
    wait = throttle.retry_after(client, now)
    if wait:
        return Attempt(None, wait)
    nonce = login_devices.device_nonce(username) if browser else None
    outcome = log_in(db(), username, password, now=now, known_device=nonce is not None)
    if outcome.user is None:
        # The client address only: a username may be a CPR number typed in the wrong field.
        log.info("failed login from %s", client)
        throttle.failed(client, now)
        if nonce is not None:
            login_devices.failed(nonce)
    return Attempt(outcome.user, 0, outcome.locked_until)


def minutes_left(until: datetime) -> int:
    """Return the whole minutes (at least 1) until `until`, for telling the user."""
    return max(1, ceil((until - clock()).total_seconds() / 60))


def start_session(user: User) -> None:
    """Log `user` into a bounded browser session tied to their token version."""
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
    login_user(user)
    session[SESSION_VERSION_KEY] = user.token_version


def end_sessions(user: User) -> None:
    """End every browser session and bearer token of `user` (logout): move their version.

    One atomic UPDATE, so two logouts at once both count; live connections notice within
    about a second (server/web/live_sight.py re-checks them).
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
    attempt = attempt_login(body["username"], body["password"])
    if attempt.wait:
        response = jsonify(error="too many failed logins from this address; try again later")
        response.status_code = 429
        response.headers["Retry-After"] = str(attempt.wait)
        return response
    if attempt.locked_until is not None:
        minutes = minutes_left(attempt.locked_until)
        response = jsonify(error=f"this account is temporarily locked after too many failed "
                                 f"logins; try again in {minutes} min or ask an administrator",
                           message=gettext(LOCKED, minutes=minutes),
                           locked_until=attempt.locked_until.isoformat())
        response.status_code = 429
        response.headers["Retry-After"] = str(max(1, ceil(
            (attempt.locked_until - clock()).total_seconds())))
        return response
    user = attempt.user
    if user is None:
        return jsonify(error="invalid username or password"), 401
    tokens = services().tokens
    return jsonify(access_token=tokens.issue(user), token_type="Bearer",
                   expires_in=tokens.ttl_seconds)


@bp.post("/api/auth/logout")
def api_logout():  # type: ignore[no-untyped-def]
    """End every session and token of the caller (as logging out of the pages does)."""
    user = signed_in()
    if user is None:
        return unauthorized()
    end_sessions(user)
    return "", 204


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
