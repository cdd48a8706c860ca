"""The clinician and patient web pages (Danish and English), served with local assets."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from telekol.server.accounts import authenticate
from telekol.server.models import Organization
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.locale import LANG_COOKIE, LANGUAGES

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    """Show the login form."""
    return render_template("login.html", error=None, next=_safe_next())


@bp.post("/login")
def login_submit():  # type: ignore[no-untyped-def]
    """Log a user in with the form fields `username` and `password`."""
    user = authenticate(db(), request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("login.html", error=_("Wrong username or password."),
                               next=_safe_next()), 401
    login_user(user)
    return redirect(_safe_next() or url_for("ui.dashboard"))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """End the session."""
    logout_user()
    return redirect(url_for("ui.login"))


@bp.get("/")
@login_required
def dashboard():  # type: ignore[no-untyped-def]
    """Show the user's patients with their latest readings and live alerts."""
    user = the_user()
    organization = db().get(Organization, user.organization_id) if user.organization_id else None
    return render_template("dashboard.html", user=user, organization=organization)


@bp.get("/language/<code>")
def language(code: str):  # type: ignore[no-untyped-def]
    """Remember the chosen language and go back."""
    response = redirect(_safe_next() or url_for("ui.dashboard"))
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True)
    return response


def _safe_next() -> str | None:
    # Only local paths: an absolute URL here would be an open redirect.
    target = request.values.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target.rstrip("?") or None
    return None


# Imported last: the module adds its routes to `bp`, defined above.
from telekol.clinician_ui import patient_views  # noqa: E402, F401
