"""`telekol server`: the web app on gunicorn, several processes of many threads each.

Flask-SocketIO runs in its threading mode on gunicorn's threaded (gthread) worker, with
simple-websocket for WebSocket, as Flask-SocketIO's deployment documentation describes.
Each worker process builds its own app after the fork: its own database pool and its own
live bridge, subscribed to the internal events topic with a client id of its own, so a
live event reaches the screens connected to every process (server/web/live.py).

Without sticky sessions a Socket.IO client that falls back to HTTP long-polling would be
sent to another process between two polls, so with more than one process the server
accepts WebSocket only (the screens try WebSocket first).

SIGTERM and SIGINT (Ctrl-C) stop it gently: gunicorn stops accepting, lets requests in
hand finish for up to GRACEFUL_SECONDS, and each process ends its live connections (the
screens reconnect elsewhere) and its broker connection.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
import time
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker
from telekol.server.config import Settings

GRACEFUL_SECONDS = 5  # within the 10 s the supervisor waits before it kills
KEEPALIVE_SECONDS = 5
# The client's address, the method and the path without its query (a search may hold a
# CPR number), status, bytes, milliseconds.
ACCESS_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
_CPR = re.compile(r"\d{6}-?\d{4}")  # a CPR number typed into a path, masked in the log

log = logging.getLogger("telekol.server")


def serve(settings: Settings) -> int:
    """Run the web server until SIGTERM or SIGINT; return the exit status."""
    WebServer(settings).run()
    return 0


def options(settings: Settings) -> dict[str, Any]:
    """Return gunicorn's settings for this stack."""
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    tls = {"certfile": settings.https_cert, "keyfile": settings.https_key} if (
        settings.https_cert) else {}
    return {**tls, "bind": [f"{host}:{settings.http_port}"], "workers": settings.http_workers,
            "threads": settings.http_threads, "worker_class": LiveWorker,
            "graceful_timeout": GRACEFUL_SECONDS, "keepalive": KEEPALIVE_SECONDS,
            "accesslog": "-", "access_log_format": ACCESS_FORMAT, "errorlog": "-",
            "logger_class": ProcessLog, "proc_name": "telekol-server",
            "control_socket_disable": True,  # one per user by default: stacks would share it
            "child_exit": _worker_ended}


class WebServer(BaseApplication):  # type: ignore[misc]
    """gunicorn configured from Settings alone: no config file, no command line."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """Apply `options`."""
        for key, value in options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app, in each worker process after the fork."""
        from telekol.server.web import create_app

        app = create_app(self.settings)
        if self.settings.http_workers > 1:
            app.extensions["socketio"].server.eio.transports = ["websocket"]
        return app

    def run(self) -> None:
        """Run the master process until it is stopped."""
        try:
            GentleArbiter(self).run()
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)


class GentleArbiter(Arbiter):  # type: ignore[misc]
    """The master process; Ctrl-C stops it as gently as SIGTERM."""

    def handle_int(self) -> None:
        """Stop gracefully (gunicorn's own SIGINT is a quick stop that cuts requests)."""
        self.handle_term()


class LiveWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker that also ends its live connections when stopping.

    Each open WebSocket holds one of the worker's threads; gunicorn would wait for them
    until its graceful timeout, so they are closed as soon as the stop begins.
    """

    def init_signals(self) -> None:
        """Treat SIGINT (Ctrl-C reaches every process of the terminal) like SIGTERM."""
        super().init_signals()
        signal.signal(signal.SIGINT, self.handle_exit)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Begin the graceful stop and close the live connections beside it."""
        if self.alive:
            app = getattr(self, "wsgi", None)  # None while the app is still loading
            threading.Thread(target=_end_live, args=(app,), daemon=True).start()
        super().handle_exit(sig, frame)


def _worker_ended(_arbiter: Any, worker: Any) -> None:
    # Its gauges (pool use, live connections) leave the sums; its counters stay.
    from telekol.server.metrics_files import process_ended

    process_ended(worker.pid)


def _end_live(app: Flask | None) -> None:
    # Each connection is closed in a thread of its own (engine.io's close can wait on a
    # connection still opening), and the sweep repeats for any that open meanwhile; the
    # process ends as soon as none is left, this daemon thread with it.
    if app is None:
        return
    try:
        bridge = app.extensions["telekol"].bridge
        if bridge is not None:
            bridge.stop()
    except Exception:
        log.exception("could not disconnect from the broker")
    engineio, closing = app.extensions["socketio"].server.eio, set[str]()
    while True:
        for sid in set(engineio.sockets.copy()) - closing:  # copy: other threads change it
            closing.add(sid)
            threading.Thread(target=engineio.disconnect, args=(sid,), daemon=True).start()
        time.sleep(0.2)


class ProcessLog(Logger):  # type: ignore[misc]
    """gunicorn's logs through the process's own logging (stderr, `time LEVEL logger:`)."""

    def setup(self, cfg: Any) -> None:
        """Drop gunicorn's own handlers (its access log goes to stdout) and propagate."""
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in [h for h in logger.handlers if getattr(h, "_gunicorn", False)]:
                logger.removeHandler(handler)
            logger.propagate = True

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: Any) -> dict[str, Any]:
        """Offer only what ACCESS_FORMAT uses; no query, headers or environ."""
        found = super().atoms(resp, req, environ, request_time)
        path = _CPR.sub("[cpr]", str(found.get("U") or ""))
        return {"h": found["h"], "m": found["m"], "U": path, "s": found["s"],
                "B": found["B"], "M": found["M"]}
