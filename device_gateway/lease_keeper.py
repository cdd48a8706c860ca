"""The gateway's lease thread: renew or wait for the lease, beat, say when to consume.

Several times per lease period it runs one short transaction: claim a heartbeat slot (once),
renew or take the lease (server/ingest/lease.py) and record the heartbeat. It renews only
while the gateway's worker is making progress, so a stuck worker loses the lease to a
standby. When the lease is won it tells the gateway to consume; when it is lost, or cannot be
renewed in time (the database unreachable), it tells the gateway to stand by.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from telekol.server.ingest import lease as gateway_lease
from telekol.server.ingest.lease import Lease

log = logging.getLogger("telekol.gateway")

RENEWALS_PER_LEASE = 4
SAFETY = 0.75  # step down locally after this part of the lease without a renewal
FORGET_SECONDS = 3600.0  # a silent gateway's heartbeat is reported for an hour, then dropped


class Consumer(Protocol):
    """What the keeper drives: the gateway."""

    def activate(self, lease: Lease) -> None:
        """Start consuming under `lease`."""

    def stand_by(self, reason: str) -> None:
        """Stop consuming at once."""

    def is_active(self) -> bool:
        """Return whether it consumes now."""

    def is_connected(self) -> bool:
        """Return whether it is connected to the broker."""

    def progress_age(self) -> float:
        """Return seconds since its worker last made progress."""


class LeaseKeeper:
    """Hold (or wait for) the gateway lease on behalf of one gateway process."""

    def __init__(self, engine: Engine, consumer: Consumer, *, ttl: float,
                 client_id: str) -> None:
        self.engine = engine
        self.consumer = consumer
        self.ttl = float(ttl)
        self.client_id = client_id
        self.instance = f"{os.getpid()}-{uuid.uuid4().hex[:24]}"  # the pid helps operators
        self.host = socket.gethostname()[:100]
        self.slot: str | None = None
        self.epoch: int | None = None
        self.deadline = 0.0
        self.last_forget = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gateway-lease", daemon=True)

    def start(self) -> None:
        """Start the lease thread (its first tick at once)."""
        self.thread.start()

    def stop(self) -> None:
        """Stop the lease thread; the lease is kept until `leave` (or it lapses)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(self.ttl)

    def leave(self) -> None:
        """Release the lease and remove the heartbeat, so a standby takes over at once."""
        try:
            with self.engine.begin() as connection:
                gateway_lease.leave(connection, self.slot, self.instance)
        except SQLAlchemyError:
            log.warning("could not release the gateway lease; it lapses in %.0f s", self.ttl)

    def fence(self, connection: Connection) -> None:
        """Refuse the transaction (LeaseLost) unless this process holds the lease now."""
        gateway_lease.fence(connection, self.instance, self.epoch)

    def tick(self) -> None:
        """Renew or take the lease and beat once; start or stop the consumer to match."""
        started = time.monotonic()
        if self.consumer.progress_age() > self.ttl * SAFETY:
            log.error("the worker has made no progress for %.0f s; not renewing the lease",
                      self.consumer.progress_age())
            self._expire(started)
            return
        try:
            lease = self._renew()
        except SQLAlchemyError as error:
            log.warning("could not renew the gateway lease (%s)", type(error).__name__)
            self._expire(started)
            return
        if lease is None:
            if self.consumer.is_active() or self.epoch is not None:
                self.epoch = None
                self.consumer.stand_by("another gateway holds the lease")
            return
        self.epoch, self.deadline = lease.epoch, started + self.ttl * SAFETY
        if not self.consumer.is_active():
            log.info("holding the gateway lease (epoch %d) as %s: consuming",
                     lease.epoch, self.slot)
            self.consumer.activate(lease)

    def _renew(self) -> Lease | None:
        with self.engine.begin() as connection:
            if self.slot is None:
                self.slot = gateway_lease.claim_slot(connection, self.host, self.instance,
                                                     self.ttl)
                log.info("gateway %s started (standby until it holds the lease)", self.slot)
            lease = gateway_lease.acquire(connection, self.instance, self.ttl, self.client_id)
            role = "active" if lease is not None else "standby"
            if not gateway_lease.beat(connection, self.slot, self.instance, role,
                                      self.consumer.is_connected()):
                self.slot = None  # given away while we were silent: claim one next time
            if time.monotonic() - self.last_forget > 60:
                gateway_lease.forget(connection, FORGET_SECONDS)
                self.last_forget = time.monotonic()
        return lease

    def _expire(self, now: float) -> None:
        if self.epoch is not None and now >= self.deadline:
            self.epoch = None
            self.consumer.stand_by("the lease could not be renewed in time")

    def _run(self) -> None:
        interval = self.ttl / RENEWALS_PER_LEASE
        while True:
            try:
                self.tick()
            except Exception:  # the thread must outlive any bug; the lease then lapses
                log.exception("lease tick failed")
            if self.stopping.wait(interval):
                return
