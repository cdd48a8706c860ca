"""The device gateway process: MQTT in, committed Observations and statuses out.

paho's network thread only turns each message into a frozen `Inbound` and queues it;
a worker thread parses, stores a batch in one transaction, and only then publishes
statuses and events and acknowledges the messages (manual_ack). A persistent MQTT 5
session (clean_start=False) keeps messages queued at the broker while we are down.

Several gateway processes may run: only the one holding the lease in the database
connects to the broker and consumes (device_gateway/lease_keeper.py); the others wait on
standby without an MQTT connection, so none takes another's session. Every transaction is
fenced by the lease's epoch, so a gateway that lost the lease can neither commit nor ack.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import InterfaceError, OperationalError
from telekol.device_gateway.lease_keeper import LeaseKeeper
from telekol.server import events, metrics
from telekol.server.alerts.context_cache import ContextCache
from telekol.server.audit import log as audit
from telekol.server.audit.anchor import Anchorer
from telekol.server.broker.client import make_client, session_properties
from telekol.server.broker.mosquitto import service_password
from telekol.server.config import Settings, stored_secret
from telekol.server.db import make_engine, utcnow
from telekol.server.device_messages.envelope import refuse_retained
from telekol.server.device_messages.measurements import Rejection, parse_measurements
from telekol.server.device_messages.questionnaire_responses import parse_questionnaire_responses
from telekol.server.device_messages.topics import (
    MEASUREMENTS_SUBSCRIPTION,
    QUESTIONNAIRE_RESPONSES_SUBSCRIPTION,
    parse_topic,
    status_topic,
)
from telekol.server.ingest.batch import IngestResult, IngestService, ParsedDelivery, status
from telekol.server.ingest.lease import Lease, LeaseLost
from telekol.server.ingest.mapper_check import ensure_valid
from telekol.server.ingest.quarantine import QuarantineQuota

log = logging.getLogger("telekol.gateway")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
SUMMARY_SECONDS = 60.0
# Retain-as-published, so a device's retained message is recognised and refused; retain
# handling 2, so the broker never replays retained messages when we (re)subscribe.
DEVICE_SUBSCRIPTION = SubscribeOptions(qos=1, retainAsPublished=True,
                                       retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
GC_THRESHOLDS = (50_000, 20, 100)
# QoS 1 publishes (statuses, events) sent before their PUBACKs: paho's default of 20 sent a
# batch's 500 statuses 20 per round trip. Below the broker's max_inflight_messages (200).
INFLIGHT = 100


def gateway_client_id(settings: Settings) -> str:
    """Return this data dir's stable, unguessable MQTT client id.

    Stable so the broker keeps the durable session across restarts; unguessable so no
    device can connect with it and take the session (and its queued messages) over. It
    seeds the lease row: every gateway then uses the id the lease row holds.
    """
    return f"telekol-gateway-{stored_secret(settings.data_dir, 'gateway_client_id', 12)}"


@dataclass(frozen=True)
class Inbound:
    """One message as paho handed it over, stamped on arrival."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int
    retain: bool = False


class Gateway:
    """Receive device messages, store them exactly once, answer each with a status."""

    def __init__(self, settings: Settings, *, batch_size: int = 500) -> None:
        ensure_valid()  # proves the FHIR mappers once, so no reading is validated again
        self.settings = settings
        self.batch_size = batch_size
        self.engine = make_engine(settings.database_url)
        self.keeper = LeaseKeeper(self.engine, self, ttl=settings.gateway_lease_seconds,
                                  client_id=gateway_client_id(settings))
        audit.use_key(settings.audit_key)  # each stored batch is recorded in the chain
        self.anchorer = Anchorer(self.engine, settings)
        # The rule inputs of the patients seen, kept between batches
        # (server/alerts/context_cache.py).
        self.service = IngestService(self.engine, cache=ContextCache(), fence=self.keeper.fence,
                                     quota=QuarantineQuota.from_settings(settings))
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.role_lock = threading.Lock()
        self.client: Client | None = None  # only while holding the lease
        self.generation = 0
        self.progress = time.monotonic()
        self.stats = {"stored": 0, "duplicate": 0, "rejected": 0}
        self.worker = threading.Thread(target=self._work, name="gateway-worker", daemon=True)

    def _make_client(self, client_id: str) -> Client:
        user = "telekol-gateway"
        client = make_client(client_id, user, service_password(self.settings, user),
                             manual_ack=True)
        client.max_inflight_messages_set(INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Start the worker and the lease thread; consume once holding the lease."""
        # The kept rule contexts are many long-lived objects: with the default thresholds
        # the collector scanned them every few hundred allocations (a quarter of the
        # gateway's time in a burst). Start-up objects are frozen out of its sight.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.worker.start()
        self.keeper.start()
        self.anchorer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, disconnect, then hand the lease on at once.

        Un-acked messages stay in the broker session for the next lease holder.
        """
        self.stopping.set()
        self.keeper.stop()
        if self.worker.is_alive():
            self.worker.join(timeout)
        self.stand_by("stopping")
        self.keeper.leave()
        self.anchorer.stop()  # what this gateway stored is anchored before it goes
        self.engine.dispose()

    # The lease keeper's calls (device_gateway/lease_keeper.py).
    def activate(self, lease: Lease) -> None:
        """Connect with the lease's durable session and consume."""
        with self.role_lock:
            if self.client is not None or self.stopping.is_set():
                return
            self.client = self._make_client(lease.client_id)
            self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                      keepalive=20, clean_start=False,
                                      properties=session_properties(SESSION_EXPIRY_SECONDS,
                                                                    1000))
            self.client.loop_start()

    def stand_by(self, reason: str) -> None:
        """Disconnect at once; what is not acked stays queued at the broker."""
        with self.role_lock:
            client, self.client = self.client, None
            self.generation += 1  # nothing received so far may be acked any more
            if client is None:
                return
            log.log(logging.INFO if self.stopping.is_set() else logging.WARNING,
                    "standing by: %s", reason)
            client.disconnect()
            client.loop_stop()
            self.connected.clear()
            _drain(self.inbox)

    def is_active(self) -> bool:
        """Return whether this gateway consumes now."""
        return self.client is not None

    def is_connected(self) -> bool:
        """Return whether this gateway is connected to the broker."""
        return self.connected.is_set()

    def progress_age(self) -> float:
        """Return seconds since the worker last finished a round."""
        return time.monotonic() - self.progress

    # paho callbacks: never let an exception escape into the network thread.
    def _on_connect(self, client: Client, _u: Any, flags: ConnectFlags, reason: ReasonCode,
                    _p: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker refused the gateway: %s", reason)
                return
            if client is not self.client:
                return  # a connection made just before we stood by
            self.generation += 1
            client.subscribe([(MEASUREMENTS_SUBSCRIPTION, DEVICE_SUBSCRIPTION),
                              (QUESTIONNAIRE_RESPONSES_SUBSCRIPTION, DEVICE_SUBSCRIPTION)])
            self.connected.set()
            log.info("connected to broker (session present: %s)", flags.session_present)
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, client: Client, _u: Any, _f: Any, reason: ReasonCode,
                       _p: Any) -> None:
        if client is not self.client:
            return
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: Client, _u: Any, message: MQTTMessage) -> None:
        try:
            if client is not self.client:
                return  # received as we stood by: never acked, so the broker keeps it
            self.inbox.put(Inbound(message.topic, bytes(message.payload), message.mid,
                                   message.qos, utcnow(), self.generation,
                                   bool(message.retain)))
            metrics.message_received()
        except Exception:
            log.exception("could not queue a message")

    def _work(self) -> None:
        last_summary = time.monotonic()
        while not self.stopping.is_set():
            self.progress = time.monotonic()
            batch = self._next_batch()
            try:
                if batch:
                    self._process(batch)
            except Exception:  # the worker must outlive any bug; the broker redelivers
                log.exception("could not process a batch of %d messages", len(batch))
            if time.monotonic() - last_summary >= SUMMARY_SECONDS:
                log.info("stored %(stored)d, duplicate %(duplicate)d, rejected %(rejected)d "
                         "since start", self.stats)
                last_summary = time.monotonic()

    def _next_batch(self) -> list[Inbound]:
        try:
            batch = [self.inbox.get(timeout=0.5)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[Inbound]) -> None:
        started = time.perf_counter()
        deliveries = [_parse(inbound) for inbound in batch]
        result = self._store(deliveries)
        client = self.client
        if result is None or client is None:
            return  # stopping, or the lease lost: the broker keeps them for the next holder
        # The events first: one message that screens wait for, which would otherwise queue
        # behind the batch's statuses (paho sends at most INFLIGHT before their acks).
        if result.events:
            client.publish(events.EVENTS_TOPIC, events.encode(result.events), qos=1)
        for device_id, body in result.statuses:
            if device_id:
                client.publish(status_topic(device_id), _json(body), qos=1)
            self.stats[_STAT[body["result"]]] += 1
        for inbound in batch:
            if inbound.generation == self.generation:
                client.ack(inbound.mid, inbound.qos)
        metrics.batch_stored((i.received_at for i in batch), utcnow(), self.inbox.qsize())
        log.debug("batch of %d messages: %d statuses in %.1f ms", len(batch),
                 len(result.statuses), (time.perf_counter() - started) * 1000)

    def _store(self, deliveries: list[ParsedDelivery]) -> IngestResult | None:
        delay, singly = 0.5, False
        while True:
            try:
                return (self._store_singly(deliveries) if singly
                        else self.service.ingest(deliveries))
            except LeaseLost as lost:
                # Another gateway holds the lease now: it will receive these again.
                self.stand_by(str(lost))
                return None
            except (OperationalError, InterfaceError):
                # The database is down or locked: keep the batch (un-acked) and retry.
                log.exception("database unavailable; retrying in %.1f s", delay)
            except Exception:
                log.exception("batch failed; storing its messages one by one")
                singly = True
                continue
            if self.stopping.wait(delay):
                return None
            delay = min(delay * 2, 10.0)

    def _store_singly(self, deliveries: list[ParsedDelivery]) -> IngestResult:
        result = IngestResult()
        for delivery in deliveries:
            try:
                result.extend(self.service.ingest([delivery]))
            except (OperationalError, InterfaceError, LeaseLost):
                raise
            except Exception as error:
                log.exception("message from %s could not be processed", delivery.device_id)
                reason = (f"internal error while processing ({type(error).__name__}); "
                          "kept for review")
                result.extend(self._quarantine(delivery, reason))
        return result

    def _quarantine(self, delivery: ParsedDelivery, reason: str) -> IngestResult:
        try:
            return self.service.quarantine(delivery, [reason])
        except (OperationalError, InterfaceError, LeaseLost):
            raise
        except Exception:
            # Last resort: the message cannot even be quarantined. Say so loudly, with the
            # payload, rather than block every later message behind it.
            log.critical("could not quarantine a message from %s on %s; payload (hex): %s",
                         delivery.device_id, delivery.topic, delivery.raw.hex())
            return IngestResult(statuses=[(delivery.device_id, status(None, "rejected", [reason]))])


_STAT = {"accepted": "stored", "duplicate": "duplicate", "rejected": "rejected"}
# The parser of each topic kind a device may publish; "status" is ours, never theirs.
_PARSERS: dict[str, Callable[[bytes, datetime], list[Any]]] = {
    "measurements": parse_measurements,
    "questionnaire-responses": parse_questionnaire_responses,
}


def _parse(inbound: Inbound) -> ParsedDelivery:
    topic = parse_topic(inbound.topic)
    device_id = topic.device_id if topic else ""
    parser = _PARSERS.get(topic.kind) if topic else None
    if parser is None:
        items: list[Any] = [Rejection(None, (f"topic {inbound.topic!r} is not accepted",),
                                      inbound.payload.decode("utf-8", "replace"))]
    else:
        try:
            items = parser(inbound.payload, inbound.received_at)
        except Exception as error:  # the parser must not raise; never lose the message if it does
            log.exception("parser failed")
            items = [Rejection(None, (f"internal parser error ({type(error).__name__})",),
                               inbound.payload.decode("utf-8", "replace"))]
        if inbound.retain:
            items = refuse_retained(items)
    return ParsedDelivery(inbound.topic, device_id, inbound.received_at, items, inbound.payload)


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def _drain(inbox: queue.Queue[Inbound]) -> None:
    while True:
        try:
            inbox.get_nowait()
        except queue.Empty:
            return
