"""Users: password hashing (argon2id), login with lock-out, and signed expiring API tokens."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from math import ceil

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import case, or_, update
from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.models import User

log = logging.getLogger(__name__)

# Anti-automation (OWASP ASVS 4.0 V2.2.1; NIST SP 800-63B 5.2.2, which allows at most 100
# consecutive failures per account): after MAX_FAILED_LOGINS consecutive wrong passwords an
# account is refused for LOCKOUT, then gets MAX_FAILED_LOGINS more tries; a success resets it.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Per client IP, against password spraying over many usernames: at most IP_MAX_FAILURES
# failed logins in IP_WINDOW, then 429 with Retry-After until the oldest failure ages out.
IP_MAX_FAILURES = 20
IP_WINDOW = timedelta(minutes=1)
IP_MAX_TRACKED = 10_000  # bounded memory: the least recently failing IPs are forgotten
# How long a browser session lasts (PERMANENT_SESSION_LIFETIME): one working shift.
SESSION_LIFETIME = timedelta(hours=8)

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps login time the same, so
# response timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("telekol-timing-equaliser")


def hash_password(password: str) -> str:
    """Return an argon2id hash of `password`."""
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str,
                 now: datetime | None = None) -> User | None:
    """Return the active, unlocked user with these credentials, or None (and count a failure).

    Unknown usernames, wrong passwords, locked and deactivated accounts all answer None
    through the same steps: one argon2 verification and one counting UPDATE.
    """
    now = now or utcnow()
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        verified = user is not None
    except (VerificationError, InvalidHashError):
        verified = False
    if not verified or user is None or is_locked(user, now) or not user.active:
        _count_failure(session, username, now)
        return None
    if user.failed_logins or user.locked_until is not None:
        user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    session.commit()
    return user


def is_locked(user: User, now: datetime) -> bool:
    """Return whether the account is locked out at `now`."""
    return user.locked_until is not None and user.locked_until > now


def _count_failure(session: Session, username: str, now: datetime) -> None:
    # One atomic statement for every failure, whether or not the user exists (it then
    # updates no row); failures while locked do not extend the lock. SET expressions see
    # the old row, in SQLite and PostgreSQL alike.
    failed, locked_until = col(User.failed_logins), col(User.locked_until)
    reaches_limit = failed + 1 >= MAX_FAILED_LOGINS
    statement = (
        update(User)
        .where(col(User.username) == username,
               or_(locked_until.is_(None), locked_until <= now))
        .values(failed_logins=case((reaches_limit, 0), else_=failed + 1),
                locked_until=case((reaches_limit, now + LOCKOUT), else_=locked_until))
    )
    session.connection().execute(statement)
    session.commit()
    session.expire_all()


class LoginThrottle:
    """In-memory sliding window of failed logins per client (one per web process)."""

    def __init__(self, max_failures: int = IP_MAX_FAILURES, window: timedelta = IP_WINDOW,
                 max_tracked: int = IP_MAX_TRACKED) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_tracked = max_tracked
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: datetime) -> int:
        """Return the seconds `client` must wait before trying again (0: go ahead)."""
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.max_failures:
                return 0
            return max(1, ceil((times[0] + self.window - now).total_seconds()))

    def failed(self, client: str, now: datetime) -> None:
        """Record a failed login from `client`."""
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)
            if len(times) == self.max_failures:
                log.warning("login throttled for client %s: %d failures within %d s",
                            client, len(times), self.window.total_seconds())

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times


class TokenSigner:
    """Issue and check bearer tokens: signed (user id, token version) pairs that expire."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self.ttl_seconds = ttl_seconds
        self._serializer = URLSafeTimedSerializer(secret_key, salt="telekol-api-token")

    def issue(self, user: User) -> str:
        """Return a token for `user`."""
        return self._serializer.dumps({"uid": user.id, "v": user.token_version})

    def claims(self, token: str) -> tuple[int, int] | None:
        """Return (user id, token version) of a valid, unexpired token, else None."""
        try:
            data = self._serializer.loads(token, max_age=self.ttl_seconds)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        uid, version = data.get("uid"), data.get("v", 0)
        if not isinstance(uid, int) or not isinstance(version, int):
            return None
        return uid, version

    def user_id(self, token: str) -> int | None:
        """Return the user id a valid, unexpired token names, else None."""
        found = self.claims(token)
        return found[0] if found else None
