"""The JSON door for administration at /api/admin: organisations and users.

Administrators only: anyone else signed in gets 403, and nobody sees a password hash.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext
from telekol.server.accounts import admin
from telekol.server.models import Organization
from telekol.server.web.auditing import note
from telekol.server.web.auth import find_user, signed_in
from telekol.server.web.context import db

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
USER_ACTIONS = ("deactivate", "reactivate", "unlock")


def error(message: str, status: int) -> tuple[Response, int]:
    """Return a JSON error body with `status`."""
    return jsonify(error=message), status


@bp.before_request
def administrators_only() -> Any:
    """Answer 401 without login and 403 to anyone but an administrator."""
    user = signed_in()
    if user is None:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if user.role != "admin":
        return error("administrators only", 403)
    return None


@bp.get("/organizations")
def organizations():  # type: ignore[no-untyped-def]
    """List the organisations with their number of users."""
    return jsonify(admin.list_organizations(db()))


@bp.post("/organizations")
def add_organization():  # type: ignore[no-untyped-def]
    """Add an organisation from JSON {id, name, kind, sor_code?, phone?}."""
    body = _body()
    note(None, "create", f"Organization/{_text(body, 'id')}")  # a refusal is recorded too
    try:
        org = admin.add_organization(db(), _text(body, "id"), _text(body, "name"),
                                     _text(body, "kind"), _text(body, "sor_code") or None,
                                     _text(body, "phone") or None)
    except admin.AdminError as refused:
        db().rollback()
        return refusal(refused)
    db().commit()
    return jsonify(_organization(org)), 201


@bp.patch("/organizations/<org_id>")
def change_organization(org_id: str):  # type: ignore[no-untyped-def]
    """Change an organisation's phone number from JSON {phone} ("" or null removes it)."""
    body = _body()
    if "phone" not in body:
        return error('only the phone number can be changed: {"phone": ...}', 400)
    if db().get(Organization, org_id) is None:
        return error(f"no organisation {org_id}", 404)
    note(None, "update", f"Organization/{org_id}", detail="phone")
    try:
        org = admin.set_organization_phone(db(), org_id, _text(body, "phone") or None)
    except admin.AdminError as refused:
        db().rollback()
        return refusal(refused)
    db().commit()
    return jsonify(_organization(org))


def _organization(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "kind": org.kind, "sor_code": org.sor_code,
            "phone": org.phone}


@bp.get("/users")
def users():  # type: ignore[no-untyped-def]
    """List the users without secrets."""
    return jsonify(admin.list_users(db()))


@bp.post("/users")
def add_user():  # type: ignore[no-untyped-def]
    """Add a user from JSON {username, name, role, organization?, patient_cpr?, password?}.

    Without a password one is generated and returned once, as `password`.
    """
    body = _body()
    username, cpr = _text(body, "username"), _text(body, "patient_cpr")
    try:
        made = admin.add_user(db(), username, _text(body, "name"), _text(body, "role"),
                              organization_id=_text(body, "organization") or None,
                              patient_cpr=cpr or None, password=_text(body, "password") or None)
    except admin.AdminError as refused:
        db().rollback()
        note(None, "create", f"User/{username}")  # no patient: the answer must not tell
        return refusal(refused)
    note(made.patient_id, "create", f"User/{username}")
    db().commit()
    answer: dict[str, Any] = {"username": made.username}
    if made.generated_password is not None:
        answer["password"] = made.generated_password  # shown once; only the hash is stored
    return jsonify(answer), 201


@bp.post("/users/<username>/<action>")
def user_action(username: str, action: str):  # type: ignore[no-untyped-def]
    """Deactivate, reactivate or unlock a user, or set their password ({"password": ...})."""
    if action not in (*USER_ACTIONS, "password"):
        return error(f"no action {action}", 404)
    if find_user(username) is None:
        return error(f"no user {username}", 404)
    note(None, "update", f"User/{username}", detail=action)
    try:
        if action == "password":
            admin.set_password(db(), username, _text(_body(), "password"))
        elif action == "deactivate":
            admin.deactivate(db(), username, acting=signed_in().username)  # type: ignore[union-attr]
        else:
            getattr(admin, action)(db(), username)
    except admin.AdminError as refused:
        db().rollback()
        return refusal(refused)
    db().commit()
    return jsonify(next(u for u in admin.list_users(db()) if u["username"] == username))


def refusal(refused: admin.AdminError) -> Any:
    """Answer 400 with the reason in English (`error`) and in the reader's language."""
    response = jsonify(error=str(refused), message=gettext(refused.template, **refused.params))
    response.status_code = 400
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _text(body: dict[str, Any], key: str) -> str:
    # A password is taken as given: spaces may be part of it.
    value = body.get(key)
    if not isinstance(value, str):
        return ""
    return value if key == "password" else value.strip()
