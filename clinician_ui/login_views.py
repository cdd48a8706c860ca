"""Login, logout and the language choice: the pages every visitor reaches first."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import logout_user
from telekol.clinician_ui.blueprint import bp
from telekol.server.web import login_devices
from telekol.server.web.auth import (
    LOCKED,
    attempt_login,
    end_sessions,
    minutes_left,
    signed_in,
    start_session,
)
from telekol.server.web.locale import LANG_COOKIE, LANGUAGES
from telekol.server.web.redirects import local_target


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    """Show the login form."""
    return render_template("login.html", error=None, next=_safe_next())


@bp.post("/login")
def login_submit():  # type: ignore[no-untyped-def]
    """Log a user in with the form fields `username` and `password`."""
    attempt = attempt_login(request.form.get("username", ""),
                            request.form.get("password", ""), browser=True)
    if attempt.wait:
        page = render_template("login.html", next=_safe_next(), error=_(
            "Too many failed logins from this address. Try again in %(seconds)d seconds.",
            seconds=attempt.wait))
        return page, 429, {"Retry-After": str(attempt.wait)}
    if attempt.locked_until is not None:
        minutes = minutes_left(attempt.locked_until)
        page = render_template("login.html", next=_safe_next(), error=_(LOCKED, minutes=minutes))
        return page, 429, {"Retry-After": str(minutes * 60)}
    if attempt.user is None:
        return render_template("login.html", error=_("Wrong username or password."),
                               next=_safe_next()), 401
    start_session(attempt.user)
    response = redirect(_safe_next() or url_for("ui.dashboard"))
    return login_devices.remember(response, attempt.user.username)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """End the session on the server: this user's sessions and tokens stop working."""
    user = signed_in()
    if user is not None:
        end_sessions(user)
    logout_user()
    return redirect(url_for("ui.login"))


@bp.get("/language/<code>")
def language(code: str):  # type: ignore[no-untyped-def]
    """Remember the chosen language and go back."""
    response = redirect(_safe_next() or url_for("ui.dashboard"))
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True)
    return response


def _safe_next() -> str | None:
    # Only a path on this site (server/web/redirects.py): anything else is an open redirect.
    target = request.values.get("next")
    return local_target(target if isinstance(target, str) else None)
