"""`telekol demo`: broker, gateway, web server and simulator under one supervisor.

Each part runs as its own process (as in production); the supervisor restarts a part
that dies, and on Ctrl-C or SIGTERM stops them in reverse order of starting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from telekol.server import metrics_files
from telekol.server.accounts.devices import sync_broker
from telekol.server.broker.mosquitto import ensure_broker_ports_free, ensure_port_free
from telekol.server.config import Settings
from telekol.server.db import make_engine, session_scope
from telekol.server.demo.history_seed import seed_demo_history
from telekol.server.demo.seed import seed_demo
from telekol.server.migrate import upgrade

log = logging.getLogger("telekol.demo")
MAX_RESTARTS = 5


@dataclass
class Part:
    """One supervised process."""

    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        """Start the process (a `telekol` sub-command)."""
        command = [sys.executable, "-m", "telekol.server.ops.cli", *self.args]
        self.process = subprocess.Popen(command, env=env)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to stop, then kill it after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def child_env(settings: Settings) -> dict[str, str]:
    """Return the environment that points a child at this stack."""
    env = dict(os.environ)
    env.update(TELEKOL_DATA_DIR=str(settings.data_dir), TELEKOL_DATABASE_URL=settings.database_url,
               TELEKOL_HTTP_HOST=settings.http_host, TELEKOL_HTTP_PORT=str(settings.http_port),
               TELEKOL_MQTT_HOST=settings.mqtt_host, TELEKOL_MQTT_PORT=str(settings.mqtt_port),
               TELEKOL_MQTTS_HOST=settings.mqtts_host, TELEKOL_MQTTS_PORT=str(settings.mqtts_port),
               TELEKOL_TLS_CERT=settings.tls_cert, TELEKOL_TLS_KEY=settings.tls_key,
               TELEKOL_TLS_NAMES=",".join(settings.tls_names),
               TELEKOL_HTTPS_CERT=settings.https_cert, TELEKOL_HTTPS_KEY=settings.https_key,
               TELEKOL_PROXY_HOPS=str(settings.proxy_hops),
               TELEKOL_MOSQUITTO_CONF=str(settings.mosquitto_conf))
    return env


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, deadline: float) -> bool:
    """Return True once something accepts TCP connections on host:port."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_for_health(url: str, deadline: float, context: ssl.SSLContext | None = None) -> bool:
    """Return True once /healthz answers 200."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def prepare(settings: Settings, patients: int, history_days: int = 0) -> dict:
    """Migrate, seed the demo fixture (and its history) and write the broker's credentials."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        fixture = seed_demo(session, patients)
    seed_demo_history(engine, days=history_days)
    sync_broker(engine, settings)
    engine.dispose()
    return fixture


def run_demo(settings: Settings, *, simulate: bool, patients: int,
             history_days: int = 90) -> int:
    """Run the whole platform until interrupted; refuse (PortInUse) if a port is taken."""
    # Checked before anything is seeded or started: with the port taken, the simulator
    # would publish into whatever broker holds it.
    ensure_broker_ports_free(settings)
    ensure_port_free(settings.http_host, settings.http_port, "HTTP", "TELEKOL_HTTP_PORT")
    fixture = prepare(settings, patients, history_days)
    metrics_files.clear(settings)  # a new stack: no process of an earlier one is left
    env = child_env(settings)
    parts = [Part("broker", ["broker"]), Part("gateway", ["gateway"]), Part("server", ["server"])]
    parts.append(Part("scheduler", ["scheduler"]))
    if simulate:
        parts.append(Part("simulator", ["simulate"]))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        _start_all(parts, env, settings)
        url = web_url(settings)
        if not wait_for_health(url + "healthz", time.monotonic() + 60, _trust(settings)):
            log.warning("the platform did not report healthy within 60 s; see the logs above")
        _print_welcome(url, fixture, settings)
        _supervise(parts, env, stop)
    finally:
        for part in reversed(parts):
            part.stop()
        print("TeleKOL demo stopped.", flush=True)
    return 0


def web_url(settings: Settings) -> str:
    """Return the web server's base URL: https when gunicorn serves TLS itself."""
    scheme = "https" if settings.https_cert else "http"
    return f"{scheme}://{settings.http_host}:{settings.http_port}/"


def _trust(settings: Settings) -> ssl.SSLContext | None:
    """Trust the system's CAs and the local CA, for a web certificate signed by either."""
    if not settings.https_cert:
        return None
    context = ssl.create_default_context()
    if settings.ca_file.exists():
        context.load_verify_locations(settings.ca_file)
    return context


def _start_all(parts: list[Part], env: dict[str, str], settings: Settings) -> None:
    parts[0].start(env)
    if not wait_for_port(settings.mqtt_host, settings.mqtt_port, time.monotonic() + 20):
        raise RuntimeError(f"the broker did not start on port {settings.mqtt_port}")
    for part in parts[1:]:
        part.start(env)


def _supervise(parts: list[Part], env: dict[str, str], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for part in parts:
            if part.process is not None and part.process.poll() is not None and not stop.is_set():
                now = time.monotonic()
                part.restarts = [t for t in part.restarts if now - t < 60] + [now]
                if len(part.restarts) > MAX_RESTARTS:
                    log.error("%s keeps failing; stopping the demo", part.name)
                    return
                log.warning("%s exited with %s; restarting", part.name, part.process.returncode)
                part.start(env)


def _print_welcome(url: str, fixture: dict, settings: Settings) -> None:
    ca = settings.tls_cert or settings.ca_file
    lines = ["", "=" * 66, f"  TeleKOL is running: {url}",
             f"  Devices: MQTT over TLS on port {settings.mqtts_port} "
             f"({'certificate' if settings.tls_cert else 'CA'} {ca})", "",
             f"  Demo logins (password for all: {fixture['users'][0]['password']}):"]
    for user in fixture["users"]:
        lines.append(f"    {user['username']:<18} {user['role']:<8} {user['organization'] or ''}")
    lines += ["", "  Press Ctrl-C to stop.", "=" * 66, ""]
    print("\n".join(lines), flush=True)
