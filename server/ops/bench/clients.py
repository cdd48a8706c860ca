"""The benchmark's clients: hubs publishing over MQTT, clinicians watching over Socket.IO.

Every hub is its own MQTT connection with its own account, as in production (the broker's
ACL lets a device publish only under its own topic). A clinician is a Socket.IO client on
/live with a bearer token, and counts the `observation` events it receives by
(msg_id, code): a run ends when every viewer has every event it may see, or at a deadline.
"""

from __future__ import annotations

import selectors
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import engineio
import orjson
import requests
import socketio
from paho.mqtt.client import Client
from telekol.server.broker.client import make_client
from telekol.server.broker.mosquitto import service_password
from telekol.server.demo.seed import demo_device_password
from telekol.server.device_messages.topics import MEASUREMENTS_SUBSCRIPTION, measurements_topic

Key = tuple[str, str]  # (msg_id, reading code): one observation event


def body(msg_id: str, readings: Iterable[tuple[str, float]],
         taken_at: datetime | None = None) -> bytes:
    """Return a measurement object as a device sends it."""
    taken = (taken_at or datetime.now(UTC)).isoformat(timespec="seconds")
    return orjson.dumps({"msg_id": msg_id, "taken_at": taken,
                         "readings": [{"code": c, "value": v} for c, v in readings]})


def connected(client: Client, host: str, port: int, timeout: float = 20) -> Client:
    """Connect and start the network loop; raise when the broker does not answer."""
    ready = threading.Event()
    client.on_connect = lambda *_: ready.set()
    client.max_inflight_messages_set(1000)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not ready.wait(timeout):
        raise RuntimeError("could not connect to the benchmark broker")
    return client


class Hubs:
    """One MQTT connection per hub, all served by one epoll loop; `publish` stamps each
    message's send time.

    paho's own loop thread waits in select(), which cannot watch a descriptor numbered
    above 1023: about 340 hubs per process. One selector thread for all of them has no
    such limit and spares a thousand threads.
    """

    def __init__(self, settings: Any, device_ids: Iterable[str], timeout: float = 60) -> None:
        self.sent: dict[str, float] = {}
        self.selector = selectors.DefaultSelector()
        self.ready = threading.Semaphore(0)
        self.stopping = threading.Event()
        self.clients: dict[str, Client] = {}
        for device_id in device_ids:
            client = make_client(f"{device_id}-bench-{time.time_ns()}", device_id,
                                 demo_device_password(device_id))
            client.on_connect = lambda *_: self.ready.release()
            client.max_inflight_messages_set(1000)
            client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=120)
            sock = client.socket()
            assert sock is not None, "connect() leaves a socket"
            self.selector.register(sock, selectors.EVENT_READ, client)  # type: ignore[arg-type]
            self.clients[device_id] = client
        self.loop = threading.Thread(target=self._serve, name="bench-hubs", daemon=True)
        self.loop.start()
        deadline = time.monotonic() + timeout
        for _ in self.clients:
            if not self.ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError("hubs could not connect to the benchmark broker")

    def _serve(self) -> None:
        last = time.monotonic()
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                key.data.loop_read()
            if time.monotonic() - last > 1:
                for client in self.clients.values():
                    client.loop_misc()
                last = time.monotonic()

    def publish(self, device_id: str, msg_id: str, payload: bytes) -> None:
        """Publish at QoS 1 as the hub."""
        self.sent[msg_id] = time.perf_counter()
        self.clients[device_id].publish(measurements_topic(device_id), payload, qos=1)

    def close(self) -> None:
        """Disconnect every hub."""
        for client in self.clients.values():
            client.disconnect()
        self.stopping.set()
        self.loop.join(5)
        self.selector.close()


class TransportSink:
    """The gateway's account subscribed to every hub's topic: MQTT alone, no processing."""

    def __init__(self, settings: Any, expected: int) -> None:
        self.received: dict[str, float] = {}
        self.expected, self.done = expected, threading.Event()
        subscribed = threading.Event()
        user = "telekol-gateway"  # the real path: same topic, account and ACL
        self.client = make_client(f"bench-transport-{time.time_ns()}", user,
                                  service_password(settings, user))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        connected(self.client, settings.mqtt_host, settings.mqtt_port)
        self.client.subscribe(MEASUREMENTS_SUBSCRIPTION, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the transport subscriber could not subscribe")

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.received[orjson.loads(message.payload)["msg_id"]] = time.perf_counter()
        if len(self.received) >= self.expected:
            self.done.set()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class _InlineEvents(engineio.Client):  # type: ignore[misc]
    """An Engine.IO client that hands Socket.IO events to their handler on its read thread.

    The stock client starts a thread per message: 4,000 threads for a 2,000-object burst,
    which on this 2-core machine took CPU from the platform being measured. Only events
    are handled inline; connects, disconnects and acks keep the stock path.
    """

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message" and args and isinstance(args[0], str) and args[0][:1] == "2":
            kwargs["run_async"] = False  # "2": a Socket.IO EVENT packet
        return super()._trigger_event(event, *args, **kwargs)


class LiveClient(socketio.Client):  # type: ignore[misc]
    """A Socket.IO client whose event handlers run on the read thread (`_InlineEvents`)."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InlineEvents


@dataclass
class Viewer:
    """One clinician's screen: the events it may see and when each arrived."""

    username: str
    organization: str | None
    expected: set[Key] = field(default_factory=set)
    received: dict[Key, float] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    client: LiveClient | None = None
    found: int = 0  # expected events received

    def expect(self, keys: Iterable[Key]) -> None:
        """Add events this viewer must receive before the run ends."""
        self.expected.update(keys)
        self.done.clear()

    def on_observation(self, data: dict[str, Any]) -> None:
        """Note an event's arrival; set `done` once all expected ones are in."""
        key = (str(data.get("msg_id")), str(data.get("code")))
        if key in self.received:
            return
        self.received[key] = time.perf_counter()
        if key in self.expected:
            self.found += 1
            if self.found >= len(self.expected):
                self.done.set()


def token(base: str, username: str, password: str) -> str:
    """Log in over the API and return a bearer token."""
    response = requests.post(f"{base}/api/auth/token", json={
        "username": username, "password": password}, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def watch(base: str, users: list[dict[str, Any]]) -> list[Viewer]:
    """Connect one Socket.IO client per user to /live."""
    viewers = []
    for user in users:
        viewer = Viewer(user["username"], user["organization"])
        viewer.client = LiveClient(reconnection=False)
        viewer.client.on("observation", viewer.on_observation, namespace="/live")
        viewer.client.connect(base, namespaces=["/live"], transports=["websocket"],
                              auth={"token": token(base, user["username"], user["password"])},
                              wait_timeout=30)
        viewers.append(viewer)
    return viewers


def wait_all(viewers: list[Viewer], deadline: float) -> None:
    """Wait until every viewer has every expected event, or until `deadline` (monotonic)."""
    for viewer in viewers:
        viewer.done.wait(max(0.0, deadline - time.monotonic()))


def close_all(viewers: list[Viewer]) -> None:
    """Disconnect every viewer."""
    for viewer in viewers:
        if viewer.client is not None:
            viewer.client.disconnect()
