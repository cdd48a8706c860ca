"""The gateways' lease and heartbeats in the database (server/ingest/lease.py).

A lapsed lease is made by taking it with a negative period: no test waits for a clock.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from telekol.server.ingest import lease
from telekol.server.ingest.batch import IngestService
from telekol.server.ingest.gateway_health import gateway_state
from telekol.server.ingest.lease import LeaseLost
from telekol.server.models import InboundMessage, Observation, QuarantinedMessage

from tests.test_ingest import NOW, count, delivery, reading


def run(engine: Engine, action, *args):
    """Run one lease call in a transaction of its own, as the gateways do."""
    with engine.begin() as connection:
        return action(connection, *args)


def test_the_first_gateway_takes_the_lease_and_seeds_the_session_id(engine: Engine) -> None:
    first = run(engine, lease.acquire, "gw-a", 10, "telekol-gateway-A")
    assert first == lease.Lease("telekol-gateway-A", 1)
    # A second gateway brings a client id of its own, but the row keeps the first one's.
    assert run(engine, lease.acquire, "gw-b", 10, "telekol-gateway-B") is None
    assert run(engine, lease.acquire, "gw-a", 10, "telekol-gateway-B") == first


def test_a_lapsed_lease_passes_to_a_standby_with_a_higher_epoch(engine: Engine) -> None:
    run(engine, lease.acquire, "gw-a", -1, "telekol-gateway-A")
    taken = run(engine, lease.acquire, "gw-b", 10, "ignored")
    assert taken == lease.Lease("telekol-gateway-A", 2)
    assert run(engine, lease.acquire, "gw-a", 10, "ignored") is None


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    run(engine, lease.acquire, "gw-a", 60, "telekol-gateway-A")
    run(engine, lease.release, "gw-a")
    assert run(engine, lease.acquire, "gw-b", 60, "x") == lease.Lease("telekol-gateway-A", 2)


def test_the_fence_passes_only_the_current_holder_at_its_epoch(engine: Engine) -> None:
    run(engine, lease.acquire, "gw-a", -1, "id")
    run(engine, lease.acquire, "gw-b", 60, "id")
    run(engine, lease.fence, "gw-b", 2)
    for instance, epoch in (("gw-a", 1), ("gw-a", 2), ("gw-b", 1), ("gw-b", None)):
        with pytest.raises(LeaseLost):
            run(engine, lease.fence, instance, epoch)


def test_the_fence_refuses_a_holder_whose_lease_lapsed(engine: Engine) -> None:
    run(engine, lease.acquire, "gw-a", -1, "id")
    with pytest.raises(LeaseLost):
        run(engine, lease.fence, "gw-a", 1)


def test_a_restarted_gateway_takes_its_dead_predecessors_slot(engine: Engine) -> None:
    assert run(engine, lease.claim_slot, "host_1", "gw-a", 10) == "host_1/1"
    assert run(engine, lease.claim_slot, "host_1", "gw-b", 10) == "host_1/2"
    # "_" in the host name matches only itself: another host's slots are not taken.
    assert run(engine, lease.claim_slot, "hostX1", "gw-x", -1) == "hostX1/1"
    # With every heartbeat counted as stale (-1 s), gw-c takes over the first slot ...
    assert run(engine, lease.claim_slot, "host_1", "gw-c", -1) == "host_1/1"
    # ... and gw-a, still running, learns it on its next beat.
    assert run(engine, lease.beat, "host_1/1", "gw-a", "standby", False) is False
    assert run(engine, lease.beat, "host_1/1", "gw-c", "active", True) is True


def test_leaving_releases_the_lease_and_removes_the_heartbeat(engine: Engine) -> None:
    slot = run(engine, lease.claim_slot, "h", "gw-a", 10)
    run(engine, lease.acquire, "gw-a", 60, "id")
    run(engine, lease.leave, slot, "gw-a")
    _now, row, beats = run(engine, lease.roster)
    assert row.holder is None and beats == []


def backdate(engine: Engine, slot: str, seconds: float) -> None:
    """Make a heartbeat look `seconds` old."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE gatewayheartbeat SET beat_at = beat_at - :s "
                                "WHERE slot = :slot"), {"s": seconds, "slot": slot})


def test_health_is_ok_with_one_connected_holder_and_a_live_standby(engine: Engine) -> None:
    run(engine, lease.claim_slot, "h", "gw-a", 10)
    run(engine, lease.claim_slot, "h", "gw-b", 10)
    run(engine, lease.acquire, "gw-a", 60, "id")
    run(engine, lease.beat, "h/1", "gw-a", "active", True)
    assert run(engine, gateway_state, 10) == "ok"


@pytest.mark.parametrize(
    ("holder", "connected", "silent", "expected"),
    [
        (None, False, None, "no gateway holds the lease (none is consuming)"),
        ("gw-a", False, None, "gateway h/1 holds the lease but is not connected to the broker"),
        ("gw-a", True, "h/2", "gateway h/2 stopped consuming: no heartbeat for 30 s"),
        ("gw-a", True, "h/1", "gateway h/1 stopped consuming: no heartbeat for 30 s"),
    ],
)
def test_health_names_what_is_wrong_with_the_gateways(engine: Engine, holder, connected, silent,
                                                     expected) -> None:
    run(engine, lease.claim_slot, "h", "gw-a", 10)
    run(engine, lease.claim_slot, "h", "gw-b", 10)
    if holder:
        run(engine, lease.acquire, holder, 60, "id")
    run(engine, lease.beat, "h/1", "gw-a", "active", connected)
    if silent:
        backdate(engine, silent, 30)
    assert run(engine, gateway_state, 10) == expected


def test_health_says_when_no_gateway_runs(engine: Engine) -> None:
    assert run(engine, gateway_state, 10) == "no gateway is running"


def test_forget_drops_only_long_silent_heartbeats(engine: Engine) -> None:
    run(engine, lease.claim_slot, "h", "gw-a", 10)
    run(engine, lease.claim_slot, "h", "gw-b", 10)
    backdate(engine, "h/2", 7200)
    run(engine, lease.forget, 3600)
    assert [b.slot for b in run(engine, lease.roster)[2]] == ["h/1"]


def test_an_ingest_under_a_lost_lease_commits_nothing(engine: Engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    run(engine, lease.acquire, "gw-a", -1, "id")
    run(engine, lease.acquire, "gw-b", 60, "id")  # gw-a's lease (epoch 1) passed to gw-b
    stale = IngestService(engine, clock=lambda: NOW,
                          fence=lambda connection: lease.fence(connection, "gw-a", 1))
    before = [count(engine, m) for m in (InboundMessage, Observation, QuarantinedMessage)]
    with pytest.raises(LeaseLost):
        stale.ingest([delivery(device, reading("fenced-1", 95))])
    with pytest.raises(LeaseLost):
        stale.quarantine(delivery(device, raw=b"garbage"), ["kept for review"])
    assert [count(engine, m) for m in (InboundMessage, Observation, QuarantinedMessage)] == before
    current = IngestService(engine, clock=lambda: NOW,
                            fence=lambda connection: lease.fence(connection, "gw-b", 2))
    assert current.ingest([delivery(device, reading("fenced-1", 95))]).statuses[0][1][
        "result"] == "accepted"
