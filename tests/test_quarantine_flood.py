"""One device password floods the real platform with rejected payloads (issue 11 row 5).

Through the real broker and gateway: 2,000 large rejected payloads from one device keep at
most the quota, each is answered `rejected`, and a well-behaved device sending meanwhile has
every reading accepted.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from telekol.server.accounts.devices import provision_device
from telekol.server.broker import mosquitto as broker
from telekol.server.db import make_engine
from telekol.server.ingest.quarantine import QuarantineQuota
from telekol.server.models import Device, Observation, QuarantinedMessage, QuarantineOverflow

from tests.stack_fixtures import Stack, StatusListener

pytestmark = pytest.mark.integration
FLOOD, LARGE = 2000, b"{" + b"x" * 20_000  # 40 MB of invalid JSON


def new_device(stack: Stack, engine) -> dict[str, Any]:
    """Provision a device of its own for the first demo patient and load it into the broker."""
    with Session(engine) as session:
        made = provision_device(session, patient_id=stack.fixture["patients"][0]["id"],
                                device_id=f"flood-{uuid.uuid4().hex[:8]}")
        session.commit()
        rows = session.exec(select(Device.id, Device.mqtt_password_hash)).all()
    broker.write_password_file(stack.settings, [(d, h) for d, h in rows])
    stack.broker.reload()
    return {"device_id": made.device_id, "mqtt_username": made.mqtt_username,
            "mqtt_password": made.mqtt_password}


def test_a_flood_of_rejected_payloads_keeps_the_quota_and_every_device_gets_its_status(
        stack: Stack) -> None:
    engine = make_engine(stack.settings.database_url)
    flooder, good = new_device(stack, engine), new_device(stack, engine)
    flooding, steady = StatusListener(stack, flooder), StatusListener(stack, good)
    readings: list[str] = []

    def well_behaved() -> None:
        for index in range(20):
            body = {"msg_id": f"good-{index}", "taken_at": datetime.now(UTC).isoformat(),
                    "readings": [{"code": "spo2", "value": 95}]}
            steady.client.publish(f"telekol/v1/devices/{good['device_id']}/measurements",
                                  json.dumps(body), qos=1)
            readings.append(steady.wait_for(body["msg_id"], timeout=120)["result"])

    beside = threading.Thread(target=well_behaved)
    try:
        topic = f"telekol/v1/devices/{flooder['device_id']}/measurements"
        beside.start()
        for _ in range(FLOOD):
            flooding.client.publish(topic, LARGE, qos=1)
        answers = Counter(flooding.wait_for(None, timeout=120)["result"] for _ in range(FLOOD))
        beside.join(120)
    finally:
        flooding.close()
        steady.close()
    assert answers == Counter({"rejected": FLOOD})  # every message answered
    assert readings == ["accepted"] * 20  # the well-behaved device is unaffected
    quota = QuarantineQuota()
    with Session(engine) as session:
        kept, stored = session.exec(select(func.count(), func.sum(func.length(
            QuarantinedMessage.payload))).where(
            QuarantinedMessage.device_id == flooder["device_id"])).one()
        overflow = session.get(QuarantineOverflow, flooder["device_id"])
        observations = session.exec(select(func.count()).select_from(Observation).where(
            Observation.device_id == good["device_id"])).one()
    engine.dispose()
    assert kept <= quota.per_hour and stored <= quota.bytes_per_day
    assert overflow is not None and overflow.dropped + kept == FLOOD
    assert observations == 20
