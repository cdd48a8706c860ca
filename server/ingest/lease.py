"""One active gateway, the others on standby: a lease in the database, fenced by its epoch.

Any number of `telekol gateway` processes may run against one database. Only the lease
holder connects to the broker, with the one durable MQTT session whose client id the lease
row keeps, so no two gateways ever take each other's session and what the broker queued
waits for whichever gateway holds the lease next. The holder renews the lease several times
per lease period; when it stops (killed, hung, cut off from the database) the lease lapses
and a standby takes it, raising the epoch. Every ingest transaction checks, as its last
statement and holding the lease row's lock, that its epoch is still current (`fence`): a
gateway that lost the lease cannot commit, so it never acknowledges a message either.

Each process also keeps a heartbeat row under a slot name (`host/1`, `host/2`, ...) for
/healthz (server/ingest/gateway_health.py); a restarted process takes over its dead predecessor's
slot. All times are seconds on the database's clock, so the hosts' clocks need not agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

LEASE_NAME = "ingest"
MAX_SLOTS = 1000


class LeaseLost(RuntimeError):
    """This gateway no longer holds the lease (epoch) its work was started under."""


@dataclass(frozen=True)
class Lease:
    """The lease as its holder sees it: the durable MQTT session and the fencing epoch."""

    client_id: str
    epoch: int


def now_sql(connection: Connection) -> str:
    """Return an SQL expression for the database clock in seconds since the epoch."""
    if connection.dialect.name == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def db_now(connection: Connection) -> float:
    """Return the database clock in seconds since the epoch."""
    return float(connection.execute(text(f"SELECT {now_sql(connection)}")).scalar_one())


def acquire(connection: Connection, instance: str, ttl: float, client_id: str) -> Lease | None:
    """Renew the lease if `instance` holds it, take it if it lapsed; None if another holds it.

    `client_id` only seeds the lease row when there is none yet (the first gateway's own).
    """
    connection.execute(text(
        "INSERT INTO gatewaylease (name, client_id, holder, epoch, expires_at) "
        "VALUES (:name, :client_id, NULL, 0, 0) ON CONFLICT (name) DO NOTHING"),
        {"name": LEASE_NAME, "client_id": client_id})
    now = now_sql(connection)
    row = connection.execute(text(
        "UPDATE gatewaylease SET epoch = CASE WHEN holder = :me THEN epoch ELSE epoch + 1 END, "
        f"holder = :me, expires_at = {now} + :ttl "
        f"WHERE name = :name AND (holder = :me OR holder IS NULL OR expires_at < {now}) "
        "RETURNING client_id, epoch"), {"name": LEASE_NAME, "me": instance, "ttl": ttl}).first()
    return Lease(row.client_id, int(row.epoch)) if row is not None else None


def release(connection: Connection, instance: str) -> None:
    """Give the lease up at once (a clean stop), so a standby need not wait for it to lapse."""
    connection.execute(text(
        "UPDATE gatewaylease SET holder = NULL, expires_at = 0 "
        "WHERE name = :name AND holder = :me"), {"name": LEASE_NAME, "me": instance})


def fence(connection: Connection, instance: str, epoch: int | None) -> None:
    """Raise LeaseLost unless `instance` still holds the lease at `epoch`; lock the row."""
    if epoch is None:
        raise LeaseLost("this gateway is on standby")
    lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
    held = connection.execute(text(
        "SELECT epoch FROM gatewaylease WHERE name = :name AND holder = :me AND epoch = :epoch "
        f"AND expires_at > {now_sql(connection)}{lock}"),
        {"name": LEASE_NAME, "me": instance, "epoch": epoch}).first()
    if held is None:
        raise LeaseLost(f"the lease of epoch {epoch} has passed to another gateway or lapsed")


def claim_slot(connection: Connection, host: str, instance: str, stale: float) -> str:
    """Return a heartbeat slot for this process: a dead predecessor's on `host`, or a new one."""
    now = now_sql(connection)
    taken = connection.execute(text(
        f"UPDATE gatewayheartbeat SET instance = :me, role = 'standby', connected = :no, "
        f"started_at = {now}, beat_at = {now} "
        f"WHERE slot = (SELECT slot FROM gatewayheartbeat WHERE slot LIKE :pattern "
        f"ESCAPE '\\' AND beat_at < {now} - :stale ORDER BY slot LIMIT 1) "
        f"AND beat_at < {now} - :stale RETURNING slot"),
        {"me": instance, "no": False, "pattern": f"{_like(host)}/%", "stale": stale}).first()
    if taken is not None:
        return str(taken.slot)
    for number in range(1, MAX_SLOTS + 1):
        made = connection.execute(text(
            "INSERT INTO gatewayheartbeat (slot, instance, role, connected, started_at, beat_at) "
            f"VALUES (:slot, :me, 'standby', :no, {now}, {now}) ON CONFLICT (slot) DO NOTHING "
            "RETURNING slot"), {"slot": f"{host}/{number}", "me": instance, "no": False}).first()
        if made is not None:
            return str(made.slot)
    raise RuntimeError(f"more than {MAX_SLOTS} gateways on {host}")


def beat(connection: Connection, slot: str, instance: str, role: str, connected: bool) -> bool:
    """Record that this process works; False if its slot was given to another process."""
    done = connection.execute(text(
        f"UPDATE gatewayheartbeat SET role = :role, connected = :connected, "
        f"beat_at = {now_sql(connection)} WHERE slot = :slot AND instance = :me"),
        {"role": role, "connected": connected, "slot": slot, "me": instance})
    return bool(done.rowcount == 1)


def leave(connection: Connection, slot: str | None, instance: str) -> None:
    """Release the lease and remove this process's heartbeat (a clean stop)."""
    release(connection, instance)
    if slot is not None:
        connection.execute(text(
            "DELETE FROM gatewayheartbeat WHERE slot = :slot AND instance = :me"),
            {"slot": slot, "me": instance})


def forget(connection: Connection, older_than: float) -> None:
    """Drop heartbeats of processes silent for longer than `older_than` seconds."""
    connection.execute(text(
        f"DELETE FROM gatewayheartbeat WHERE beat_at < {now_sql(connection)} - :age"),
        {"age": older_than})


def roster(connection: Connection) -> tuple[float, Any, list[Any]]:
    """Return the database clock, the lease row (or None) and every heartbeat row."""
    now = db_now(connection)
    lease = connection.execute(text(
        "SELECT holder, epoch, expires_at FROM gatewaylease WHERE name = :name"),
        {"name": LEASE_NAME}).first()
    beats = connection.execute(text(
        "SELECT slot, instance, role, connected, beat_at FROM gatewayheartbeat ORDER BY slot",
    )).all()
    return now, lease, list(beats)


def _like(value: str) -> str:
    # The host name is used in a LIKE pattern: its own % and _ must match only themselves.
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
