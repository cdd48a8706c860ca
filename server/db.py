"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine


class UTCDateTime(TypeDecorator[datetime]):
    """Store instants as UTC and always hand back timezone-aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current instant in UTC."""
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int | None = None, pool_timeout: float = 30.0) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys.

    With `pool_size` the pool holds exactly that many connections and a caller waits at
    most `pool_timeout` seconds for one (then sqlalchemy.exc.TimeoutError): the web
    server sizes it to the requests it lets work at once. Without, the defaults below.
    """
    pool: dict[str, Any] = {}
    if pool_size is not None:
        pool = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": pool_timeout}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **pool)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, **(pool or {"pool_size": 10, "max_overflow": 20}))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web server read while the gateway writes. FULL because the gateway
    # answers "accepted" and acks after a commit: that promise must survive power loss,
    # not only a process crash. Batched commits keep the cost of FULL small.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
