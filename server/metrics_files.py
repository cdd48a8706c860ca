"""Where a stack's processes keep their metrics, and the one text every scrape gets.

Every long-running process of a stack (the web server's gunicorn workers, the gateway, the
scheduler) writes its values into `$TELEKOL_DATA_DIR/metrics/` with prometheus-client's
multiprocess mode, one small memory-mapped file per process and kind. `GET /metrics` on any
web worker reads all of them, so one scrape sees the whole stack on this host without a
port per process. Counters and histograms of a process that has ended stay in the sum
(totals do not fall back); its gauges (queue depth, connections, pool use) leave it.

prometheus-client picks its storage when the first metric is made, from the environment, so
`use_folder` must run before anything imports prometheus-client
(`telekol.server.metrics`). A process that
never calls it (tests, `telekol bench`) keeps its metrics in memory and shows only its own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sys
from pathlib import Path

from telekol.server.config import Settings

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format every Prometheus reads (the names need none of 1.0.0's escaping).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
_LIVE_GAUGE = re.compile(r"gauge_live\w*_(\d+)\.db")


def folder(settings: Settings) -> Path:
    """Return the stack's metrics folder."""
    return settings.data_dir / "metrics"


def use_folder(settings: Settings) -> Path:
    """Make this process (and the processes it starts) write metrics into the stack's folder."""
    if "prometheus_client" in sys.modules and ENVIRONMENT not in os.environ:
        raise RuntimeError("metrics were made before their folder was chosen")
    path = folder(settings)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[ENVIRONMENT] = str(path)
    forget_ended(path)
    pid = os.getpid()
    atexit.register(lambda: process_ended(pid) if os.getpid() == pid else None)
    return path


def clear(settings: Settings) -> None:
    """Empty the folder: the whole stack is starting, nothing in it is running."""
    path = folder(settings)
    if path.is_dir():
        shutil.rmtree(path)


def forget_ended(path: Path) -> None:
    """Drop the gauges of processes that are no longer running (killed ones included)."""
    for file in path.glob("gauge_live*_*.db"):
        found = _LIVE_GAUGE.fullmatch(file.name)
        if found and not _running(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()


def process_ended(pid: int) -> None:
    """Take an ended process's gauges out of the sums (gunicorn calls it per worker)."""
    path = os.environ.get(ENVIRONMENT)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def exposition() -> tuple[bytes, str]:
    """Return every process's metrics in the Prometheus text format, and its content type."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if ENVIRONMENT not in os.environ:
        return generate_latest(REGISTRY), TEXT_FORMAT
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), TEXT_FORMAT


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
