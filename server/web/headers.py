"""Security headers on every answer (pages, /api, /fhir and Socket.IO), and this site's origin.

The `Host` header is the caller's to choose, so it is never trusted as it comes: links the
server writes (FHIR Bundle links, the CSP's WebSocket origin) use `TELEKOL_PUBLIC_URL` when
it is set, else the request's host only if it is one of the configured names
(`TELEKOL_HTTP_HOST`, `TELEKOL_HTTP_ALLOWED_HOSTS`, localhost), else the configured address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, request
from telekol.server.config import Settings

# connect-src: 'self' covers same-origin ws:/wss: in CSP Level 3 browsers; the explicit
# ws/wss origin of this site is added per request for older ones. Never ws: or wss: alone,
# which would allow any host.
BASE_POLICY = ("default-src 'self'; img-src 'self' data:; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
# A host header as a browser sends it: a name or an IPv4 address, or [IPv6], and a port.
_HOST = re.compile(r"\A(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")


def trusted_names(settings: Settings) -> set[str]:
    """Return the host names this site answers to (lower case, no port)."""
    names = {*LOCAL_NAMES, settings.http_host.lower(), *settings.allowed_hosts}
    if settings.public_url:
        names.add((urlsplit(settings.public_url).hostname or "").lower())
    return names - {""}


def origin(settings: Settings, host_header: str | None, scheme: str) -> str:
    """Return this site's origin ("https://host[:port]") for links, never a foreign host."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    if host_header and _HOST.match(host_header):
        name = urlsplit(f"//{host_header}").hostname
        if name is not None and name.lower() in trusted_names(settings):
            return f"{scheme}://{host_header}"
    return f"http://{settings.http_host}:{settings.http_port}"


def site_origin() -> str:
    """Return this request's trusted origin (see `origin`)."""
    settings: Settings = current_app.extensions["telekol"].settings
    return origin(settings, request.host, request.scheme)


def content_security_policy(site: str) -> str:
    """Return the CSP for pages of `site` (its origin)."""
    parts = urlsplit(site)
    socket = "wss" if parts.scheme == "https" else "ws"
    return f"{BASE_POLICY}; connect-src 'self' {socket}://{parts.netloc}"


def add_headers(response: Response) -> Response:
    """Add the security headers; nothing that may hold patient data is stored by caches."""
    response.headers.update({k: v for k, v in SECURITY_HEADERS.items()
                             if k not in response.headers})
    response.headers.setdefault("Content-Security-Policy",
                                content_security_policy(site_origin()))
    if not request.path.startswith("/static/"):  # pages, /api, /fhir: personal data
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class HeadersEverywhere:
    """WSGI middleware: the same headers on answers Flask never sees (Socket.IO's)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Pass the request on, adding each missing header to the answer."""
        def with_headers(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            present = {name.lower() for name, _value in headers}
            site = origin(self.settings, environ.get("HTTP_HOST"),
                          environ.get("wsgi.url_scheme", "http"))
            wanted = {**SECURITY_HEADERS, "Content-Security-Policy":
                      content_security_policy(site)}
            if not str(environ.get("PATH_INFO", "")).startswith("/static/"):
                wanted["Cache-Control"] = "no-store"
            headers = [*headers, *((k, v) for k, v in wanted.items()
                                   if k.lower() not in present)]
            return start_response(status, headers, *rest)
        return self.app(environ, with_headers)
