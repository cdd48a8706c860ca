"""A device on the TLS port gets its statuses exactly as on the plain port (CONTRACT section 7).

The real `mosquitto_pub` and `mosquitto_sub` clients and paho, each verifying the broker
against the local CA `$TELEKOL_DATA_DIR/tls/ca.crt`, against the whole running platform.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.stack_fixtures import Stack, StatusListener

pytestmark = pytest.mark.integration


def reading(spo2: float = 96) -> dict[str, Any]:
    """Return a valid measurement object with a fresh msg_id."""
    return {"msg_id": f"tls-{uuid.uuid4().hex[:16]}",
            "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "readings": [{"code": "spo2", "value": spo2, "unit": "%"}]}


class StatusSubscriber:
    """`mosquitto_sub` on the device's status topic over TLS, ready once its SUBACK came."""

    def __init__(self, stack: Stack, device: dict[str, Any], count: int) -> None:
        self.process = subprocess.Popen(
            # Line-buffered: on a pipe its output would wait in a block buffer until exit.
            ["stdbuf", "-oL", "mosquitto_sub", *stack.mosquitto_address(tls=True), "-d", "-q", "1",
             "-u", device["mqtt_username"], "-P", device["mqtt_password"],
             "-t", f"telekol/v1/devices/{device['device_id']}/status",
             "-C", str(count), "-W", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        assert self.process.stdout is not None
        self.lines = iter(self.process.stdout.readline, "")
        subscribed = threading.Timer(30, self.process.kill)  # bounds a failing test only
        subscribed.start()
        for line in self.lines:  # -d prints the handshake, then "received SUBACK"
            if "SUBACK" in line:
                break
        subscribed.cancel()
        assert self.process.poll() is None, self.process.stderr.read()  # type: ignore[union-attr]

    def statuses(self) -> list[dict[str, Any]]:
        """Return the status messages once mosquitto_sub has received all it waited for."""
        rest = list(self.lines)
        self.process.wait(30)
        return [json.loads(line) for line in rest if line.startswith("{")]


def test_mosquitto_pub_and_sub_over_tls_get_the_same_statuses_as_on_the_plain_port(
        stack: Stack) -> None:
    device = stack.device(6)
    good, bad = reading(), reading(spo2=140)
    subscriber = StatusSubscriber(stack, device, count=2)
    for body in (good, bad):
        sent = stack.mosquitto_pub(device, json.dumps(body), tls=True)
        assert sent.returncode == 0, sent.stderr
    over_tls = subscriber.statuses()
    assert [(s["msg_id"], s["result"]) for s in over_tls] == [
        (good["msg_id"], "accepted"), (bad["msg_id"], "rejected")]
    plain = StatusListener(stack, device)
    try:  # the same objects again on the plain port: the same ledger, the same answers
        stack.mosquitto_pub(device, json.dumps(good))
        stack.mosquitto_pub(device, json.dumps(bad))
        again = [plain.wait_for(good["msg_id"]), plain.wait_for(bad["msg_id"])]
    finally:
        plain.close()
    assert [s["result"] for s in again] == ["duplicate", "rejected"]
    assert again[1]["errors"] == over_tls[1]["errors"]


def test_a_paho_device_over_tls_gets_its_status_for_each_reading(stack: Stack) -> None:
    device = stack.device(7)
    listener = StatusListener(stack, device, tls=True)
    try:
        bodies = [reading(), reading(spo2=93)]
        for body in bodies:
            listener.client.publish(f"telekol/v1/devices/{device['device_id']}/measurements",
                                    json.dumps(body), qos=1).wait_for_publish(10)
        results = [listener.wait_for(b["msg_id"])["result"] for b in bodies]
    finally:
        listener.close()
    assert results == ["accepted", "accepted"]


def test_mosquitto_pub_that_does_not_trust_the_local_ca_is_refused(stack: Stack) -> None:
    device = stack.device(0)
    address = stack.mosquitto_address(tls=True)
    untrusting = [*address[:address.index("--cafile")], "--capath", "/etc/ssl/certs"]
    done = subprocess.run(["mosquitto_pub", *untrusting, "-u", device["mqtt_username"],
                           "-P", device["mqtt_password"], "-q", "1", "-t",
                           f"telekol/v1/devices/{device['device_id']}/measurements",
                           "-m", json.dumps(reading())], capture_output=True, text=True,
                          timeout=20, check=False)
    assert done.returncode != 0
