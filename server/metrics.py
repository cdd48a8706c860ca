"""What the platform counts for its operators, exported at GET /metrics.

The metrics are prometheus-client objects, defined here once; the hooks that feed them sit at
the edges of the processes' work (a batch committed, a request answered, a push done), so a
reading costs no more than a counter step or two. With several processes the values go
through files in one folder (server/metrics_files.py); that choice is made before this
module is imported. No label ever holds a patient, a person or a device: routes are URL
rules (`/api/patients/<patient_id>`), results and severities come from fixed sets.
"""

from __future__ import annotations

import functools
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

P = ParamSpec("P")
R = TypeVar("R")

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
RESULTS = ("accepted", "duplicate", "rejected")  # the contract's status results
EVENT_TYPES = frozenset({"alert", "observation", "message", "team", "care_plan", "proposal"})
SEVERITIES = frozenset({"red", "yellow", "blue"})
_PENDING_ALERTS = "telekol.metrics.alerts"  # key in Session.info until the commit

disable_created_metrics()  # no `_created` series: the multiprocess mode has none either

GATEWAY_RECEIVED = Counter("telekol_gateway_messages_received",
                           "MQTT messages the gateway received from devices")
GATEWAY_QUEUE = Gauge("telekol_gateway_queue_depth", "Messages received by the gateway and "
                      "waiting for a batch, after its latest batch", multiprocess_mode="livesum")
GATEWAY_BATCH = Histogram("telekol_gateway_batch_size", "Messages per batch the gateway stored",
                          buckets=BATCH_SIZES)
GATEWAY_LAG = Histogram("telekol_gateway_lag_seconds", "From a message's receipt by the gateway "
                        "to its outcome committed and acknowledged", buckets=SECONDS)
INGEST_STATUSES = Counter("telekol_ingest_statuses", "Status answers to devices, by result",
                          ["result"])
INGEST_COMMIT = Histogram("telekol_ingest_commit_seconds", "A batch's transaction, from its "
                          "first read to its commit (rules included)", buckets=SECONDS)
ALERTS = Counter("telekol_alerts", "Alerts created or updated by the rules (committed), by "
                 "severity", ["severity", "action"])
LIVE_EVENTS = Counter("telekol_live_events_pushed", "Live events pushed to Socket.IO rooms "
                      "after their audit, by type", ["type"])
LIVE_REACHED = Counter("telekol_live_viewers_reached", "Connected users a pushed batch reached, "
                       "summed over batches")
LIVE_WITHHELD = Counter("telekol_live_events_withheld", "Live events not pushed because their "
                        "audit records could not be written")
LIVE_CONNECTIONS = Gauge("telekol_live_connections", "Open /live Socket.IO connections",
                         multiprocess_mode="livesum")
HTTP_SECONDS = Histogram("telekol_http_request_seconds", "Time to answer an HTTP request, by "
                         "URL rule, method and status class", ["route", "method", "status"],
                         buckets=SECONDS)
POOL_SIZE = Gauge("telekol_db_pool_size", "Connections a database pool keeps",
                  ["pool"], multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("telekol_db_pool_checked_out", "Database connections in use",
                         ["pool"], multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge("telekol_db_pool_overflow", "Database connections in use beyond the "
                      "pool's size", ["pool"], multiprocess_mode="livesum")
POOL_TIMEOUTS = Counter("telekol_db_pool_timeouts", "Requests answered 503 because no "
                        "database connection was free in time")


def message_received() -> None:
    """Count one MQTT message arriving at the gateway."""
    GATEWAY_RECEIVED.inc()


def batch_stored(received: Iterable[datetime], now: datetime, waiting: int) -> None:
    """Record a gateway batch committed and acknowledged, and the queue left behind it."""
    lags = [(now - at).total_seconds() for at in received]
    GATEWAY_BATCH.observe(len(lags))
    for lag in lags:
        GATEWAY_LAG.observe(lag)
    GATEWAY_QUEUE.set(waiting)


def timed_ingest(store: Callable[P, R]) -> Callable[P, R]:
    """Time a batch's transaction and count the status answers it returns."""

    @functools.wraps(store)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        result = store(*args, **kwargs)
        INGEST_COMMIT.observe(time.perf_counter() - started)
        tally = Tally(body.get("result") for _device, body in getattr(result, "statuses", ()))
        for name, count in tally.items():
            INGEST_STATUSES.labels(name if name in RESULTS else "other").inc(count)
        return result

    return timed


def alert_written(session: Session, severity: str | None, action: str) -> None:
    """Note an alert created or updated in `session`; it counts once the session commits."""
    kind = severity if severity in SEVERITIES else "other"
    session.info.setdefault(_PENDING_ALERTS, []).append((kind, action))


@event.listens_for(Session, "after_commit")
def _count_committed_alerts(session: Session) -> None:
    for severity, action in session.info.pop(_PENDING_ALERTS, ()):
        ALERTS.labels(severity, action).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_alerts(session: Session) -> None:
    session.info.pop(_PENDING_ALERTS, None)


def live_pushed(batch: list[dict[str, Any]],
                reached_by: Callable[[list[str]], list[Any]]) -> None:
    """Count the events of a pushed batch and the connected users (`reached_by` rooms) it
    reached."""
    for kind, count in Tally(e.get("type") for e in batch if e.get("rooms")).items():
        LIVE_EVENTS.labels(kind if kind in EVENT_TYPES else "other").inc(count)
    rooms = {r for e in batch for r in e.get("rooms", ()) if isinstance(r, str)}
    LIVE_REACHED.inc(len(reached_by(sorted(rooms))))


def request_answered(route: str, method: str, status: int, seconds: float) -> None:
    """Record one HTTP request's time under its URL rule (never its path)."""
    HTTP_SECONDS.labels(route, method, f"{status // 100}xx").observe(seconds)


def watch_pool(engine: Engine, name: str) -> None:
    """Keep the pool gauges of `engine` up to date, labelled `name`."""
    pool: Any = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    POOL_SIZE.labels(name).set(size)
    in_use, beyond = POOL_CHECKED_OUT.labels(name), POOL_OVERFLOW.labels(name)

    def checked_out(*_args: Any) -> None:
        in_use.inc()
        if size and pool.checkedout() > size:
            beyond.inc()

    def checked_in(*_args: Any) -> None:
        # Called before the connection is back, so checkedout() still counts it.
        in_use.dec()
        if size and pool.checkedout() > size:
            beyond.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
