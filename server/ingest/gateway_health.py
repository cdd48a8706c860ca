"""What /healthz says about the gateways: one of them consuming, none silently stopped.

Read from the heartbeats and the lease the gateways keep in the database
(server/ingest/lease.py), so it holds for any number of gateways on any hosts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from telekol.server.ingest.lease import roster


def gateway_state(connection: Connection, stale: float) -> str:
    """Return "ok", or each problem: nobody consuming, gateways silent for over `stale` s."""
    now, lease, beats = roster(connection)
    if not beats:
        return "no gateway is running"
    stopped = [b for b in beats if now - b.beat_at > stale]
    problems = [f"gateway {b.slot} stopped consuming: no heartbeat for {now - b.beat_at:.0f} s"
                for b in stopped]
    holder = _holder(now, lease, beats)
    if holder is None:
        problems.insert(0, "no gateway holds the lease (none is consuming)")
    elif holder not in stopped and not holder.connected:
        problems.insert(0, f"gateway {holder.slot} holds the lease but is not connected to "
                           "the broker")
    return "; ".join(problems) or "ok"


def _holder(now: float, lease: Any, beats: list[Any]) -> Any:
    if lease is None or lease.holder is None or lease.expires_at <= now:
        return None
    return next((b for b in beats if b.instance == lease.holder), None)
