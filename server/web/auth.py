"""Authentication for every door: session cookie, or `Authorization: Bearer <token>`."""

from __future__ import annotations

from flask import Blueprint, Request, jsonify, redirect, request, url_for
from flask_login import current_user
from sqlmodel import select
from telekol.server.accounts import authenticate
from telekol.server.models import User
from telekol.server.web.context import db, services
from telekol.server.web.extensions import login_manager

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the session's user if still active (not when a bearer token is sent)."""
    if not user_id.isdigit() or bearer_token(request):
        return None
    user = db().get(User, int(user_id))
    return user if user is not None and user.active else None


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
    user_id = services().tokens.user_id(token)
    user = db().get(User, user_id) if user_id is not None else None
    return user if user is not None and user.active else None


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
    user = authenticate(db(), body["username"], body["password"])
    if user is None:
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
