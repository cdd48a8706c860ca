"""Users: password hashing (argon2id), login with growing delays, and signed expiring API tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import or_, update
from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.models import User

log = logging.getLogger(__name__)

# Anti-automation (OWASP ASVS 4.0 V2.2.1; NIST SP 800-63B 5.2.2, which allows at most 100
# consecutive failures per account): the first MAX_FAILED_LOGINS consecutive wrong
# passwords cost nothing; after that the account waits before the next try, FIRST_DELAY and
# twice as long after each further failure, at most MAX_DELAY. A success resets it; so do
# an administrator (`telekol user unlock`) and time. A browser this user has logged in
# from before (a device cookie, server/web/login_devices.py) is not held up by the
# account's delay, so guessing from elsewhere cannot lock the user out of their own PC.
# Per client address and network: server/accounts/login_throttle.py.
MAX_FAILED_LOGINS = 5
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
# How long a browser session lasts (PERMANENT_SESSION_LIFETIME): one working shift.
SESSION_LIFETIME = timedelta(hours=8)

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps login time the same, so
# response timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("telekol-timing-equaliser")


def hash_password(password: str) -> str:
    """Return an argon2id hash of `password`."""
    return _hasher.hash(password)


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt came to: the user, or why not (a delay the user is told of)."""

    user: User | None
    locked_until: datetime | None = None  # the account waits out a delay until then


def account_delay(failures: int) -> timedelta:
    """Return how long an account waits after `failures` consecutive failed logins."""
    if failures < MAX_FAILED_LOGINS:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - MAX_FAILED_LOGINS, 30), MAX_DELAY)


def authenticate(session: Session, username: str, password: str,
                 now: datetime | None = None) -> User | None:
    """Return the active, unlocked user with these credentials, or None (and count a failure)."""
    return log_in(session, username, password, now).user


def log_in(session: Session, username: str, password: str, now: datetime | None = None,
           *, known_device: bool = False) -> LoginOutcome:
    """Check a login; count a failure against the account unless from a `known_device`.

    Unknown usernames, wrong passwords and deactivated accounts all come to no user
    through the same steps: one argon2 verification and one counting UPDATE. An account
    waiting out its delay says so (`locked_until`), to the user it belongs to as to anyone.
    """
    now = now or utcnow()
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        verified = user is not None
    except (VerificationError, InvalidHashError):
        verified = False
    held = user is not None and user.active and is_locked(user, now) and not known_device
    if not verified or user is None or held or not user.active:
        if not known_device:
            _count_failure(session, username, now)
        row = session.exec(select(User).where(User.username == username)).first()
        locked = row.locked_until if row is not None and row.active and is_locked(row, now) \
            else None
        return LoginOutcome(None, None if known_device else locked)
    if user.failed_logins or user.locked_until is not None:
        user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    session.commit()
    return LoginOutcome(user)


def is_locked(user: User, now: datetime) -> bool:
    """Return whether the account is locked out at `now`."""
    return user.locked_until is not None and user.locked_until > now


def _count_failure(session: Session, username: str, now: datetime) -> None:
    # One atomic UPDATE for every failure, whether or not the user exists (it then updates
    # no row); failures while the account waits are not counted, so its delay grows only
    # as fast as the delays pass. Then the delay that count earns, if any.
    counted = session.connection().execute(
        update(User).where(col(User.username) == username,
                           or_(col(User.locked_until).is_(None), col(User.locked_until) <= now))
        .values(failed_logins=col(User.failed_logins) + 1)
        .returning(col(User.failed_logins))).scalar()
    if counted is not None and counted >= MAX_FAILED_LOGINS:
        session.connection().execute(
            update(User).where(col(User.username) == username,
                               col(User.failed_logins) == counted)
            .values(locked_until=now + account_delay(counted)))
    session.commit()
    session.expire_all()


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
