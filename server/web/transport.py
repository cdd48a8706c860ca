"""HTTPS: `Secure` cookies and HSTS on every response to a request that came over TLS.

TLS ends either in gunicorn itself (TELEKOL_HTTPS_CERT / TELEKOL_HTTPS_KEY: the request's
scheme is https) or at a reverse proxy; then, and only when TELEKOL_PROXY_HOPS says how many
proxies stand in front, their X-Forwarded-Proto and X-Forwarded-For are believed (ProxyFix).
The middleware wraps the whole app, Socket.IO included, so no response is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

# One year, the least OWASP and the HSTS preload list accept; no includeSubDomains, since
# TeleKOL cannot know what else runs under its domain.
HSTS = "max-age=31536000"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def init_app(app: Flask, proxy_hops: int) -> None:
    """Wrap the app (after Socket.IO's middleware) so TLS is seen and answered."""
    inner: WSGIApp = TransportSecurity(app.wsgi_app)
    if proxy_hops > 0:
        inner = ProxyFix(inner, x_for=proxy_hops, x_proto=proxy_hops)  # type: ignore[arg-type]
    app.wsgi_app = inner  # type: ignore[method-assign,assignment]


class TransportSecurity:
    """Add HSTS and mark every cookie `Secure` when the request's scheme is https."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request, adjusting the headers of a response sent over TLS."""
        if environ.get("wsgi.url_scheme") != "https":
            return self.app(environ, start_response)

        def secure_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            return start_response(status, secured(headers), *rest)

        return self.app(environ, secure_start)


def secured(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the headers with HSTS and with `Secure` on each cookie that lacks it."""
    found = [(name, _secure_cookie(value) if name.lower() == "set-cookie" else value)
             for name, value in headers if name.lower() != "strict-transport-security"]
    return [*found, ("Strict-Transport-Security", HSTS)]


def _secure_cookie(value: str) -> str:
    attributes = {part.strip().lower() for part in value.split(";")[1:]}
    return value if "secure" in attributes else f"{value}; Secure"
