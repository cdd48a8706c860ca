"""Device cookies (OWASP "Slow down online guessing attacks with device cookies").

After a successful login the browser gets a signed cookie naming the user. A later login
for that user from that browser is not held up by the account's delay (server/accounts/login.py),
so someone guessing from elsewhere cannot lock a nurse out of her own PC; the cookie's own
failures are counted, and after MAX_FAILURES it is trusted no longer (in this process).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

COOKIE = "telekol_device"
MAX_AGE_SECONDS = 180 * 24 * 3600
MAX_FAILURES = 5
MAX_TRACKED = 20_000


class DeviceBook:
    """The failed logins of each device cookie seen by this process (bounded)."""

    def __init__(self) -> None:
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def spent(self, nonce: str) -> bool:
        """Return whether the cookie has failed too often to be trusted."""
        with self._lock:
            return self._failures.get(nonce, 0) >= MAX_FAILURES

    def failed(self, nonce: str) -> None:
        """Count a failed login made with the cookie."""
        with self._lock:
            self._failures[nonce] = self._failures.pop(nonce, 0) + 1
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="telekol-login-device")


def _book() -> DeviceBook:
    return current_app.extensions.setdefault("telekol_login_devices", DeviceBook())


def device_nonce(username: str) -> str | None:
    """Return the nonce of this browser's valid, unspent device cookie for `username`."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("u") != username:
        return None
    nonce = data.get("n")
    return nonce if isinstance(nonce, str) and not _book().spent(nonce) else None


def failed(nonce: str) -> None:
    """Count a failed login from a known device."""
    _book().failed(nonce)


def remember(response: Response, username: str) -> Response:
    """Give the browser a device cookie for `username` (after a successful login)."""
    value = _serializer().dumps({"u": username, "n": secrets.token_urlsafe(12)})
    response.set_cookie(COOKIE, value, max_age=MAX_AGE_SECONDS, httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                        path="/login")
    return response
