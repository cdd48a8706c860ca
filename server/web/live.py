"""Live updates: internal MQTT events fanned out over Socket.IO namespace /live.

Both ends are audited (server/audit/log.py, door "live"): a connection joining its rooms, and
what is pushed to a connected user: one record per user and patient for each delivered
batch, naming the events (`alert/5,observation/ab12`), written with one INSERT before the
push; if the records cannot be written, the batch is not pushed. Each web process records
what it delivers to its own connections, so with several processes every delivery is
recorded once, and an event nobody is connected to receive discloses nothing and records
nothing.

paho's network thread only queues what arrives; a delivery thread audits and pushes, taking
whatever has queued meanwhile as one batch, so a burst costs a few audit transactions
rather than one per broker message, and the broker connection is never held up by the
database.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, SocketIO, join_room
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.engine import Engine
from telekol.server import events, metrics
from telekol.server.audit import log as audit
from telekol.server.broker.client import make_client
from telekol.server.broker.mosquitto import service_password
from telekol.server.care.access import rooms_of
from telekol.server.config import Settings
from telekol.server.db import make_engine
from telekol.server.web.auditing import write as write_audit
from telekol.server.web.auth import user_for_token
from telekol.server.web.extensions import socketio
from telekol.server.web.live_sight import SessionWatch, within_sight

log = logging.getLogger("telekol.live")
NAMESPACE = "/live"


class Viewers:
    """Who is connected to this process's /live namespace, and to which rooms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, tuple[audit.Actor, frozenset[str]]] = {}
        self._sessions: dict[str, tuple[int, int]] = {}

    def add(self, sid: str, actor: audit.Actor, rooms: list[str],
            session: tuple[int, int] | None = None) -> None:
        """Remember a connection, the rooms it joined and its (user id, session version)."""
        with self._lock:
            self._by_sid[sid] = (actor, frozenset(rooms))
            if session is not None:
                self._sessions[sid] = session
            metrics.LIVE_CONNECTIONS.set(len(self._by_sid))

    def remove(self, sid: str) -> None:
        """Forget a connection that has gone."""
        with self._lock:
            self._by_sid.pop(sid, None)
            self._sessions.pop(sid, None)
            metrics.LIVE_CONNECTIONS.set(len(self._by_sid))

    def sessions(self) -> dict[str, tuple[int, int]]:
        """Return sid -> (user id, session version it connected with)."""
        with self._lock:
            return dict(self._sessions)

    def reached_by(self, rooms: list[str]) -> list[audit.Actor]:
        """Return the users (once each, however many tabs) connected to any of `rooms`."""
        wanted = set(rooms)
        with self._lock:
            found = {actor.user_id: actor for actor, joined in self._by_sid.values()
                     if joined & wanted}
        return [found[key] for key in sorted(found, key=lambda k: (k is None, k or 0))]


VIEWERS = Viewers()
Sight = Callable[[Engine, list[dict[str, Any]]], list[dict[str, Any]]]
MAX_COALESCED = 200  # broker messages delivered as one batch when they have piled up


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
    VIEWERS.add(request.sid, audit.Actor.of(user), rooms,  # type: ignore[attr-defined]
                (user.id or 0, user.token_version))
    log.info("live client connected (user %s, sid %s)", user.id, request.sid)  # type: ignore[attr-defined]


@socketio.on("disconnect", namespace=NAMESPACE)
def on_disconnect(*_args: Any) -> None:
    """Forget the connection: later events are no longer delivered to it."""
    VIEWERS.remove(request.sid)  # type: ignore[attr-defined]


def push_entries(batch: list[dict[str, Any]], viewers: Viewers) -> list[audit.Entry]:
    """Return one audit entry per connected user and patient the batch shows them."""
    shown: dict[tuple[audit.Actor, str | None], list[str]] = {}
    for event in batch:
        rooms = [r for r in event.get("rooms", []) if isinstance(r, str)]
        data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
        patient: dict[str, Any] = data["patient"] if isinstance(data.get("patient"),
                                                                dict) else {}
        patient_id = patient.get("id") or next(
            (r.removeprefix("patient:") for r in rooms if r.startswith("patient:")), None)
        resource = f"{str(event.get('type'))[:40]}/{data.get('id', '')}"
        for actor in viewers.reached_by(rooms):
            shown.setdefault((actor, patient_id), []).append(resource)
    return [audit.Entry(actor, patient_id, "push", _listed(resources), "live",
                        detail=f"{len(resources)} live events" if len(resources) > 1 else "")
            for (actor, patient_id), resources in shown.items()]


def _listed(resources: list[str], limit: int = 300) -> str:
    """Return the events as one resource string that fits the column, saying how many more."""
    text = ",".join(resources)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for resource in resources:
        rest = len(resources) - len(kept) - 1
        if len(",".join([*kept, resource, f"+{rest} more"])) > limit:
            break
        kept.append(resource)
    return ",".join([*kept, f"+{len(resources) - len(kept)} more"])


class LiveBridge:
    """Subscribe to the gateway's internal events and emit them to the allowed rooms."""

    def __init__(self, settings: Settings, sio: SocketIO, engine: Engine | None = None,
                 sight: Sight = within_sight) -> None:
        self.settings = settings
        self.sight = sight  # readdresses each batch to who sees its patients now
        self.sio = sio
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.viewers = VIEWERS
        self.connected = threading.Event()
        user = "telekol-server"
        # A fresh random id per process: several web servers may share the account.
        self.client = make_client(f"{user}-{secrets.token_hex(8)}", user,
                                  service_password(settings, user))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.arrived: queue.Queue[bytes | None] = queue.Queue()
        self.worker = threading.Thread(target=self._deliver_queued, name="live-delivery",
                                       daemon=True)
        self.watch = SessionWatch(self.engine, self.viewers.sessions, self._end)

    def start(self) -> None:
        """Connect in the background (paho reconnects by itself); start delivering."""
        self.worker.start()
        self.watch.start()
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=20)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect from the broker; deliver what has arrived, then stop."""
        self.watch.stop()
        self.client.disconnect()
        self.client.loop_stop()
        if self.worker.is_alive():
            self.arrived.put(None)
            self.worker.join(10)

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Announce events to every web-server process (this one included) via the broker."""
        self.client.publish(events.EVENTS_TOPIC, events.encode(batch), qos=1)

    def broker_state(self) -> str:
        """Return "ok" while connected to the broker."""
        return "ok" if self.connected.is_set() else "not connected"

    def _on_connect(self, client: Client, _u: Any, _f: ConnectFlags, reason: ReasonCode,
                    _p: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker refused the web server: %s", reason)
                return
            client.subscribe([(events.EVENTS_TOPIC, 1)])
            self.connected.set()
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, _c: Client, _u: Any, _f: Any, _r: ReasonCode, _p: Any) -> None:
        self.connected.clear()

    def _on_message(self, _c: Client, _u: Any, message: MQTTMessage) -> None:
        try:
            self.arrived.put(bytes(message.payload))
        except Exception:
            log.exception("could not queue a live event")

    def _deliver_queued(self) -> None:
        while True:
            payloads = [self.arrived.get()]
            while len(payloads) < MAX_COALESCED:
                try:
                    payloads.append(self.arrived.get_nowait())
                except queue.Empty:
                    break
            batch = [e for p in payloads if p is not None for e in events.decode(p)]
            try:
                if batch:
                    self.deliver(batch)
            except Exception:
                log.exception("could not deliver %d live event(s)", len(batch))
            if None in payloads:
                return

    def _end(self, sid: str) -> None:
        # Forget it first: from now on no push reaches it, whatever the disconnect takes.
        self.viewers.remove(sid)
        self.sio.server.disconnect(sid, namespace=NAMESPACE)

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Audit the disclosures of a batch in one transaction, then push (to the rooms that
        see each patient now: live_sight.within_sight)."""
        try:
            batch = self.sight(self.engine, batch)
            audit.record_many(self.engine, push_entries(batch, self.viewers))
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
