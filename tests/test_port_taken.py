"""`telekol demo` and `telekol broker` refuse to start where something already listens.

Otherwise the demo's simulator would publish into whatever broker holds the port. The
refusal comes before anything is migrated, seeded or started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from telekol.server.broker.mosquitto import PortInUse, ensure_port_free
from telekol.server.ops.supervisor import free_port


@pytest.fixture
def taken() -> Iterator[int]:
    """Return a loopback port something listens on for the test's length."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def telekol(data_dir: Path, *args: str, **ports: int) -> subprocess.CompletedProcess[str]:
    """Run `telekol ARGS` on its own data dir and ports; kill all it started if it hangs."""
    env = dict(os.environ, TELEKOL_DATA_DIR=str(data_dir),
               **{f"TELEKOL_{k.upper()}": str(v) for k, v in ports.items()})
    process = subprocess.Popen([sys.executable, "-m", "telekol.server.ops.cli", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize(("command", "busy", "variable"), [
    (("demo", "--no-simulate"), "mqtt_port", "TELEKOL_MQTT_PORT"),
    (("demo", "--no-simulate"), "http_port", "TELEKOL_HTTP_PORT"),
    (("broker",), "mqtt_port", "TELEKOL_MQTT_PORT"),
    (("demo", "--no-simulate"), "mqtts_port", "TELEKOL_MQTTS_PORT"),
    (("broker",), "mqtts_port", "TELEKOL_MQTTS_PORT"),
])
def test_a_taken_port_stops_the_command_before_it_seeds_or_starts_anything(
        tmp_path, taken, command, busy, variable) -> None:
    ports = {"mqtt_port": free_port(), "mqtts_port": free_port(), "http_port": free_port(),
             busy: taken}
    done = telekol(tmp_path, *command, **ports)
    assert done.returncode == 1
    assert f":{taken} is already in use" in done.stderr  # the TLS one on every interface
    assert variable in done.stderr
    assert not (tmp_path / "telekol.db").exists()  # not even migrated
    assert not (tmp_path / "mosquitto" / "passwd").exists()


def test_a_free_port_passes_the_check_and_a_listened_one_does_not(taken) -> None:
    ensure_port_free("127.0.0.1", free_port(), "MQTT", "TELEKOL_MQTT_PORT")
    with pytest.raises(PortInUse, match="MQTT port"):
        ensure_port_free("127.0.0.1", taken, "MQTT", "TELEKOL_MQTT_PORT")
