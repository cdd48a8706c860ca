"""The web server: Flask app factory with the UI, /api, /fhir, /healthz and Socket.IO."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy.exc import TimeoutError as PoolTimeout
from telekol.server.accounts.login import TokenSigner
from telekol.server.audit import log as audit_log
from telekol.server.config import Settings, load_settings
from telekol.server.db import make_engine
from telekol.server.metrics import watch_pool
from telekol.server.web import headers
from telekol.server.web.context import DB_WAIT_SECONDS, AppServices, busy, close_db
from telekol.server.web.extensions import babel, csrf, login_manager, socketio
from telekol.server.web.locale import here_without_lang, select_locale


def create_app(settings: Settings | None = None, *, live: bool = True,
               config: dict[str, Any] | None = None) -> Flask:
    """Build the web app; `live=False` skips the broker bridge (for unit tests)."""
    from telekol.clinician_ui import bp as ui_bp
    from telekol.server.ingest.mapper_check import ensure_valid
    from telekol.server.web import (  # the shared core
        auditing,
        auth,
        door_checks,  # one validation of every request's values, errors in the door's format
        health,
        metrics_view,
        transport,  # Secure cookies and HSTS under TLS, reverse proxies by configuration
    )
    from telekol.server.web import live as live_door  # registers the Socket.IO handlers
    from telekol.server.web.api import (  # the JSON door: one blueprint per area
        admin,
        alerts,
        audit,
        care_plan,
        episodes,
        me,
        messages,
        phone,
    )
    from telekol.server.web.fhir import api as fhir  # the FHIR door: one blueprint

    ensure_valid()  # the doors store mapped resources without validating each one
    settings = settings or load_settings()
    audit_log.use_key(settings.audit_key)  # the process's audit chain key (server/audit/log.py)
    # An explicit instance path: Flask cannot infer one inside the `telekol` namespace.
    # No app-level /static: the UI blueprint serves its own assets there.
    app = Flask(__name__, instance_path=str(settings.data_dir / "instance"), static_folder=None)
    app.config.update(SECRET_KEY=settings.secret_key, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_HTTPONLY=True,
                      BABEL_DEFAULT_LOCALE="da", WTF_CSRF_TIME_LIMIT=None,
                      JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=1024 * 1024,
                      WTF_CSRF_CHECK_DEFAULT=False)
    app.config.update(auth.cookie_settings())  # Secure cookie, 8 h session (auth.py)
    app.config.update(config or {})
    # One connection per request (context.py), so the pool is the number of requests that
    # work on the database at once; more wait up to DB_WAIT_SECONDS, then get 503.
    engine = make_engine(settings.database_url, pool_size=settings.http_db_connections,
                         pool_timeout=DB_WAIT_SECONDS)
    watch_pool(engine, "requests")
    services = AppServices(settings, engine,
                           TokenSigner(settings.secret_key, settings.token_ttl_seconds))
    app.extensions["telekol"] = services
    door_checks.init_app(app)  # bounded <int:> before any route; every request checked first
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(_translations_dir()))
    app.jinja_env.globals.update(get_locale=get_locale, here_without_lang=here_without_lang)
    socketio.init_app(app, async_mode="threading")
    # Outermost, around Socket.IO's own WSGI app, whose answers Flask never sees.
    app.wsgi_app = headers.HeadersEverywhere(app.wsgi_app, settings)  # type: ignore[method-assign]
    metrics_view.init_app(app)  # GET /metrics; its request timing hooks go first
    for blueprint in (auth.bp, alerts.bp, fhir.bp, health.bp, ui_bp, me.bp, messages.bp,
                      admin.bp, episodes.bp, audit.bp, care_plan.bp, phone.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(PoolTimeout, busy)
    app.before_request(_check_csrf)
    app.teardown_appcontext(close_db)
    app.after_request(headers.add_headers)
    auditing.init_app(app)  # registered after: its hook runs first, headers go on a 503 too
    transport.init_app(app, settings.proxy_hops)  # HTTPS: Secure cookies, HSTS (transport.py)
    if live:
        # Its own small pool: live pushes are audited even while requests fill the app's.
        bridge_engine = make_engine(settings.database_url, pool_size=2)
        watch_pool(bridge_engine, "live")
        services.bridge = live_door.LiveBridge(settings, socketio, bridge_engine)
        services.bridge.start()
    return app


def _translations_dir() -> Any:
    from telekol.clinician_ui import TRANSLATIONS_DIR

    return TRANSLATIONS_DIR


def _check_csrf() -> None:
    # Cookie-authenticated writes need the CSRF token (form field or X-CSRFToken
    # header). Bearer requests carry no ambient credentials, and a bearer header
    # makes the cookie session be ignored (server/web/auth.py), so they are exempt.
    from telekol.server.web.auth import bearer_token

    if request.method in ("GET", "HEAD", "OPTIONS") or bearer_token(request):
        return
    if request.endpoint == "auth.issue_token":
        return  # credentials in the body; no cookie is used
    if request.path.startswith(("/api/", "/fhir/")) and not current_user.is_authenticated:
        return  # nothing ambient to abuse: the view answers 401
    csrf.protect()
