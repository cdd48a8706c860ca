"""The gateway worker's order after a batch: commit, then events, statuses and acks."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select
from telekol.device_gateway.gateway import INFLIGHT, Gateway, Inbound
from telekol.server import events
from telekol.server.db import utcnow
from telekol.server.device_messages.topics import measurements_topic
from telekol.server.models import InboundMessage
from telekol.server.ops.bench.clients import body


class RecordingClient:
    """Stands in for paho: notes each publish and ack with the ledger rows committed then."""

    def __init__(self, engine) -> None:
        self.engine, self.calls = engine, []

    def _committed(self) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(InboundMessage)).one()

    def publish(self, topic: str, _payload: bytes, qos: int = 0, **_: Any) -> None:
        kind = "events" if topic == events.EVENTS_TOPIC else "health" if "health" in topic \
            else "status"
        self.calls.append((kind, self._committed()))

    def ack(self, _mid: int, _qos: int) -> None:
        self.calls.append(("ack", self._committed()))


def test_a_batch_is_committed_then_its_events_statuses_and_acks_go_out_in_that_order(
        engine, demo, settings) -> None:
    # The screens' one events message first: behind 500 statuses it waited for their acks.
    gateway = Gateway(settings.with_overrides(database_url=engine.url.render_as_string(
        hide_password=False)))
    lease = gateway.keeper._renew()  # hold the lease, as the lease thread would
    assert lease is not None
    gateway.keeper.epoch = lease.epoch
    client = RecordingClient(engine)
    gateway.client = client  # type: ignore[assignment]
    device = demo["devices"][0]["device_id"]
    batch = [Inbound(measurements_topic(device), body(f"g-{i}", [("spo2", 95.0)]), i, 1,
                     utcnow(), gateway.generation) for i in range(5)]
    gateway._process(batch)
    kinds = [kind for kind, _ in client.calls]
    assert kinds == ["events", *["status"] * 5, *["ack"] * 5]
    assert all(committed == 5 for _, committed in client.calls)  # all after the commit
    gateway.keeper.leave()
    gateway.engine.dispose()


def test_the_gateway_sends_more_than_pahos_default_twenty_publishes_before_their_acks(
        settings) -> None:
    gateway = Gateway(settings)
    client = gateway._make_client("inflight-test")  # made when the gateway wins the lease
    assert client._max_inflight_messages == INFLIGHT > 20
    gateway.engine.dispose()
