"""Users: password hashing (argon2id), login, and signed expiring API tokens."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, select
from telekol.server.models import User

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps login time the same, so
# response timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("telekol-timing-equaliser")


def hash_password(password: str) -> str:
    """Return an argon2id hash of `password`."""
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None."""
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if user is not None and user.active else None


class TokenSigner:
    """Issue and check bearer tokens: signed user ids that expire."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self.ttl_seconds = ttl_seconds
        self._serializer = URLSafeTimedSerializer(secret_key, salt="telekol-api-token")

    def issue(self, user: User) -> str:
        """Return a token for `user`."""
        return self._serializer.dumps({"uid": user.id})

    def user_id(self, token: str) -> int | None:
        """Return the user id a valid, unexpired token names, else None."""
        try:
            data = self._serializer.loads(token, max_age=self.ttl_seconds)
        except (BadSignature, ValueError, TypeError):
            return None
        uid = data.get("uid") if isinstance(data, dict) else None
        return uid if isinstance(uid, int) else None
