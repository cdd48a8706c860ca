"""The device gateway process: MQTT in, committed Observations and statuses out.

paho's network thread only turns each message into a frozen `Inbound` and queues it;
a worker thread parses, stores a batch in one transaction, and only then publishes
statuses and events and acknowledges the messages (manual_ack). A persistent MQTT 5
session (clean_start=False) keeps messages queued at the broker while we are down.
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
from sqlalchemy.exc import InterfaceError, OperationalError
from telekol.device_gateway.mqtt import make_client, session_properties
from telekol.device_gateway.payload import Rejection, parse_measurements
from telekol.device_gateway.questionnaire_payload import parse_questionnaire_responses
from telekol.device_gateway.topics import (
    MEASUREMENTS_SUBSCRIPTION,
    QUESTIONNAIRE_RESPONSES_SUBSCRIPTION,
    parse_topic,
    status_topic,
)
from telekol.server import audit, events, metrics
from telekol.server.audit_anchor import Anchorer
from telekol.server.broker import service_password
from telekol.server.config import Settings, stored_secret
from telekol.server.context_cache import ContextCache
from telekol.server.db import make_engine, utcnow
from telekol.server.ingest import IngestResult, IngestService, ParsedDelivery, status
from telekol.server.mapper_check import ensure_valid

log = logging.getLogger("telekol.gateway")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
HEARTBEAT_SECONDS = 5.0
SUMMARY_SECONDS = 60.0
GC_THRESHOLDS = (50_000, 20, 100)


def gateway_client_id(settings: Settings) -> str:
    """Return the gateway's stable, unguessable MQTT client id.

    Stable so the broker keeps our durable session across restarts; unguessable so no
    device can connect with it and take the session (and its queued messages) over.
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


class Gateway:
    """Receive device messages, store them exactly once, answer each with a status."""

    def __init__(self, settings: Settings, *, batch_size: int = 500) -> None:
        ensure_valid()  # proves the FHIR mappers once, so no reading is validated again
        self.settings = settings
        self.batch_size = batch_size
        self.engine = make_engine(settings.database_url)
        audit.use_key(settings.audit_key)  # each stored batch is recorded in the chain
        self.anchorer = Anchorer(self.engine, settings)
        # The rule inputs of the patients seen, kept between batches (server/context_cache.py).
        self.service = IngestService(self.engine, cache=ContextCache())
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.db_ok = True
        self.generation = 0
        self.stats = {"stored": 0, "duplicate": 0, "rejected": 0}
        self.client = self._make_client()
        self.worker = threading.Thread(target=self._work, name="gateway-worker", daemon=True)

    def _make_client(self) -> Client:
        user = "telekol-gateway"
        client = make_client(gateway_client_id(self.settings), user,
                             service_password(self.settings, user), manual_ack=True)
        client.will_set(events.GATEWAY_HEALTH_TOPIC, b'{"status":"offline"}', qos=1,
                        retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect (retrying in the background) and start the worker."""
        # The kept rule contexts are many long-lived objects: with the default thresholds
        # the collector scanned them every few hundred allocations (a quarter of the
        # gateway's time in a burst). Start-up objects are frozen out of its sight.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=20,
                                  clean_start=False,
                                  properties=session_properties(SESSION_EXPIRY_SECONDS, 1000))
        self.client.loop_start()
        self.worker.start()
        self.anchorer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; un-acked messages stay at the broker."""
        self.stopping.set()
        if self.worker.is_alive():
            self.worker.join(timeout)
        self._publish_health("offline")
        self.client.disconnect()
        self.client.loop_stop()
        self.anchorer.stop()  # what this gateway stored is anchored before it goes
        self.engine.dispose()

    # paho callbacks: never let an exception escape into the network thread.
    def _on_connect(self, client: Client, _u: Any, flags: ConnectFlags, reason: ReasonCode,
                    _p: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker refused the gateway: %s", reason)
                return
            self.generation += 1
            client.subscribe([(MEASUREMENTS_SUBSCRIPTION, 1),
                              (QUESTIONNAIRE_RESPONSES_SUBSCRIPTION, 1)])
            self.connected.set()
            log.info("connected to broker (session present: %s)", flags.session_present)
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, _c: Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, _c: Client, _u: Any, message: MQTTMessage) -> None:
        try:
            self.inbox.put(Inbound(message.topic, bytes(message.payload), message.mid,
                                   message.qos, utcnow(), self.generation))
            metrics.message_received()
        except Exception:
            log.exception("could not queue a message")

    def _work(self) -> None:
        last_beat = 0.0
        last_summary = time.monotonic()
        while not self.stopping.is_set():
            batch = self._next_batch()
            try:
                if batch:
                    self._process(batch)
            except Exception:  # the worker must outlive any bug; the broker redelivers
                log.exception("could not process a batch of %d messages", len(batch))
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                self._publish_health("ok" if self.db_ok else "degraded")
                last_beat = time.monotonic()
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
        if result is None:
            return  # stopping while the database is down: the broker keeps them
        for device_id, body in result.statuses:
            if device_id:
                self.client.publish(status_topic(device_id), _json(body), qos=1)
            self.stats[_STAT[body["result"]]] += 1
        if result.events:
            self.client.publish(events.EVENTS_TOPIC, events.encode(result.events), qos=1)
        for inbound in batch:
            if inbound.generation == self.generation:
                self.client.ack(inbound.mid, inbound.qos)
        metrics.batch_stored((i.received_at for i in batch), utcnow(), self.inbox.qsize())
        log.debug("batch of %d messages: %d statuses in %.1f ms", len(batch),
                 len(result.statuses), (time.perf_counter() - started) * 1000)

    def _store(self, deliveries: list[ParsedDelivery]) -> IngestResult | None:
        delay, singly = 0.5, False
        while True:
            try:
                result = (self._store_singly(deliveries) if singly
                          else self.service.ingest(deliveries))
                self.db_ok = True
                return result
            except (OperationalError, InterfaceError):
                # The database is down or locked: keep the batch (un-acked) and retry.
                self.db_ok = False
                self._publish_health("degraded")
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
            except (OperationalError, InterfaceError):
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
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            # Last resort: the message cannot even be quarantined. Say so loudly, with the
            # payload, rather than block every later message behind it.
            log.critical("could not quarantine a message from %s on %s; payload (hex): %s",
                         delivery.device_id, delivery.topic, delivery.raw.hex())
            return IngestResult(statuses=[(delivery.device_id, status(None, "rejected", [reason]))])

    def _publish_health(self, state: str) -> None:
        body = {"status": state, "db": self.db_ok, "at": events.instant(utcnow()),
                "connected": self.connected.is_set(), **self.stats}
        self.client.publish(events.GATEWAY_HEALTH_TOPIC, _json(body), qos=0, retain=True)


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
    return ParsedDelivery(inbound.topic, device_id, inbound.received_at, items, inbound.payload)


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
