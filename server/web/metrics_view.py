"""GET /metrics for an operator's Prometheus, and the timing of every request.

Nothing clinical is in the metrics (server/metrics.py), but they tell how busy the service
is, so they are not public: with `TELEKOL_METRICS_TOKEN` set a scrape must bring it as a
bearer token; without, only this machine may scrape (a loopback address, and no proxy
header, since a reverse proxy on the same host would make every visitor look local).
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Flask, Response, g, request
from flask_babel import gettext as _
from telekol.server import metrics
from telekol.server.metrics_files import exposition
from telekol.server.web.auth import bearer_token
from telekol.server.web.context import services

bp = Blueprint("metrics", __name__)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


@bp.get("/metrics")
def scrape() -> Response:
    """Answer every process's metrics in the Prometheus text format, to an allowed caller."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    body, content_type = exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """Time every request; call before any other request hook is registered."""
    app.register_blueprint(bp)
    app.before_request(_start)
    app.after_request(_answered)  # registered first, so it runs last: the final status


def _refusal() -> Response | None:
    token = services().settings.metrics_token
    if token:
        given = bearer_token(request) or ""
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return Response(_("A valid metrics token is required."), 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if _local(request.remote_addr) and not any(h in request.headers for h in PROXY_HEADERS):
        return None
    return Response(_("Metrics are only served to this machine unless a metrics token is "
                      "set (TELEKOL_METRICS_TOKEN)."), 403, mimetype="text/plain")


def _local(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _answered(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        metrics.request_answered(route, method, response.status_code,
                                 time.perf_counter() - started)
    return response
