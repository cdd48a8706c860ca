"""Live updates: internal MQTT events fanned out over Socket.IO namespace /live.

Both ends are audited (server/audit.py, door "live"): a connection joining its rooms, and
every event pushed to a connected user (one record per event and user whose rooms it goes
to, written before the push; if the records cannot be written, that message's events are
not pushed). Each web process records what it delivers to its own connections, so with
several processes every delivery is recorded once, and an event nobody is connected to
receive discloses nothing and records nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, SocketIO, join_room
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.engine import Engine
from telekol.device_gateway.mqtt import make_client
from telekol.server import audit, events, metrics
from telekol.server.access import rooms_of
from telekol.server.broker import service_password
from telekol.server.config import Settings
from telekol.server.db import make_engine
from telekol.server.web.auditing import write as write_audit
from telekol.server.web.auth import user_for_token
from telekol.server.web.extensions import socketio

log = logging.getLogger("telekol.live")
NAMESPACE = "/live"


class Viewers:
    """Who is connected to this process's /live namespace, and to which rooms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, tuple[audit.Actor, frozenset[str]]] = {}

    def add(self, sid: str, actor: audit.Actor, rooms: list[str]) -> None:
        """Remember a connection and the rooms it joined."""
        with self._lock:
            self._by_sid[sid] = (actor, frozenset(rooms))
            metrics.LIVE_CONNECTIONS.set(len(self._by_sid))

    def remove(self, sid: str) -> None:
        """Forget a connection that has gone."""
        with self._lock:
            self._by_sid.pop(sid, None)
            metrics.LIVE_CONNECTIONS.set(len(self._by_sid))

    def reached_by(self, rooms: list[str]) -> list[audit.Actor]:
        """Return the users (once each, however many tabs) connected to any of `rooms`."""
        wanted = set(rooms)
        with self._lock:
            found = {actor.user_id: actor for actor, joined in self._by_sid.values()
                     if joined & wanted}
        return [found[key] for key in sorted(found, key=lambda k: (k is None, k or 0))]


VIEWERS = Viewers()
GATEWAY_STALE_SECONDS = 15.0


@socketio.on("connect", namespace=NAMESPACE)
def on_connect(auth: Any = None) -> None:
    """Admit a browser session or a bearer token; join the user's rooms; refuse others."""
    user = current_user if current_user.is_authenticated else None
    token = auth.get("token") if isinstance(auth, dict) else None
    if user is None and isinstance(token, str):
        user = user_for_token(token)
    if user is None:
        raise ConnectionRefusedError("authentication required")
    rooms = rooms_of(user)
    subscribed = audit.Entry(audit.Actor.of(user), user.patient_id if user.role == "patient"
                             else None, "subscribe", "rooms:" + ",".join(rooms), "live")
    try:
        write_audit([subscribed])  # on the handshake's own connection
    except Exception as error:  # no audit record, no live data
        log.error("could not audit a live connection (%s); refused", type(error).__name__)
        raise ConnectionRefusedError("temporarily unavailable") from None
    for room in rooms:
        join_room(room)
    VIEWERS.add(request.sid, audit.Actor.of(user), rooms)  # type: ignore[attr-defined]
    log.info("live client connected (user %s, sid %s)", user.id, request.sid)  # type: ignore[attr-defined]


@socketio.on("disconnect", namespace=NAMESPACE)
def on_disconnect(*_args: Any) -> None:
    """Forget the connection: later events are no longer delivered to it."""
    VIEWERS.remove(request.sid)  # type: ignore[attr-defined]


def push_entries(batch: list[dict[str, Any]], viewers: Viewers) -> list[audit.Entry]:
    """Return one audit entry per event and connected user it reaches (a disclosure)."""
    entries = []
    for event in batch:
        rooms = [r for r in event.get("rooms", []) if isinstance(r, str)]
        data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
        patient: dict[str, Any] = data["patient"] if isinstance(data.get("patient"),
                                                                dict) else {}
        patient_id = patient.get("id") or next(
            (r.removeprefix("patient:") for r in rooms if r.startswith("patient:")), None)
        resource = f"{str(event.get('type'))[:40]}/{data.get('id', '')}"
        entries += [audit.Entry(actor, patient_id, "push", resource, "live")
                    for actor in viewers.reached_by(rooms)]
    return entries


class LiveBridge:
    """Subscribe to the gateway's internal events and emit them to the allowed rooms."""

    def __init__(self, settings: Settings, sio: SocketIO, engine: Engine | None = None) -> None:
        self.settings = settings
        self.sio = sio
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.viewers = VIEWERS
        self.connected = threading.Event()
        self.gateway: dict[str, Any] = {}
        self.gateway_seen = 0.0
        user = "telekol-server"
        # A fresh random id per process: several web servers may share the account.
        self.client = make_client(f"{user}-{secrets.token_hex(8)}", user,
                                  service_password(settings, user))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself."""
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=20)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect from the broker."""
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Announce events to every web-server process (this one included) via the broker."""
        self.client.publish(events.EVENTS_TOPIC, events.encode(batch), qos=1)

    def broker_state(self) -> str:
        """Return "ok" while connected to the broker."""
        return "ok" if self.connected.is_set() else "not connected"

    def gateway_state(self) -> str:
        """Return "ok" while the gateway reports in and its database works."""
        if not self.gateway:
            return "no report from the gateway"
        age = self._report_age()
        if self.gateway.get("status") != "ok":
            return f"gateway {self.gateway.get('status', 'unknown')}"
        if age > GATEWAY_STALE_SECONDS:
            return f"no report from the gateway for {age:.0f} s"
        return "ok"

    def _report_age(self) -> float:
        # The report is retained, so trust its own timestamp over when we received it.
        try:
            at = datetime.fromisoformat(str(self.gateway.get("at")).replace("Z", "+00:00"))
            return (datetime.now(UTC) - at).total_seconds()
        except ValueError:
            return time.monotonic() - self.gateway_seen

    def _on_connect(self, client: Client, _u: Any, _f: ConnectFlags, reason: ReasonCode,
                    _p: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker refused the web server: %s", reason)
                return
            client.subscribe([(events.EVENTS_TOPIC, 1), (events.GATEWAY_HEALTH_TOPIC, 0)])
            self.connected.set()
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, _c: Client, _u: Any, _f: Any, _r: ReasonCode, _p: Any) -> None:
        self.connected.clear()

    def _on_message(self, _c: Client, _u: Any, message: MQTTMessage) -> None:
        try:
            if message.topic == events.GATEWAY_HEALTH_TOPIC:
                self._gateway_report(bytes(message.payload))
                return
            self.deliver(events.decode(bytes(message.payload)))
        except Exception:
            log.exception("could not deliver a live event")

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Audit the disclosures of one broker message in one transaction, then push."""
        try:
            audit.record(self.engine, push_entries(batch, self.viewers))
        except Exception as error:
            log.error("could not audit %d live event(s) (%s); not pushed", len(batch),
                      type(error).__name__)
            metrics.LIVE_WITHHELD.inc(len(batch))
            return
        for event in batch:
            rooms = [r for r in event.get("rooms", []) if isinstance(r, str)]
            if rooms:
                self.sio.emit(event["type"], event["data"], to=rooms, namespace=NAMESPACE)
        metrics.live_pushed(batch, self.viewers.reached_by)

    def _gateway_report(self, payload: bytes) -> None:
        try:
            report = json.loads(payload)
        except ValueError:
            return
        if isinstance(report, dict):
            self.gateway = report
            self.gateway_seen = time.monotonic()
