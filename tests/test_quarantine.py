"""Quarantine quota: one device password cannot fill the disk, and nobody loses a status.

Issue 11 row 5: quarantine kept every rejected payload whole, without a quota (98 MB in 8.7 s
from one device). Now a device keeps a bounded prefix of each, with its size and SHA-256, up
to a quota; the rest is counted. Every message is still answered.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlmodel import Session, col, func, select
from telekol.server.config import load_settings
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.ingest.quarantine import QuarantineQuota
from telekol.server.models import Alert, Observation, QuarantinedMessage, QuarantineOverflow

from tests.test_ingest import NOW, reading


@pytest.fixture
def fixture(demo):
    """Return the demo fixture already in the database."""
    return demo

LARGE = b"{" + b"x" * 20_000  # not JSON: rejected, 20,001 bytes


def delivery(device_id: str, raw: bytes, at=NOW) -> ParsedDelivery:
    """Return a message as the gateway parses it, received at `at`."""
    return ParsedDelivery(f"telekol/v1/devices/{device_id}/measurements", device_id, at,
                          parse_measurements(raw, at), raw)


def kept(engine, device_id: str) -> list[QuarantinedMessage]:
    with Session(engine) as session:
        return list(session.exec(select(QuarantinedMessage).where(
            QuarantinedMessage.device_id == device_id)).all())


def overflow(engine, device_id: str) -> QuarantineOverflow | None:
    with Session(engine) as session:
        return session.get(QuarantineOverflow, device_id)


def flood(service: IngestService, device_id: str, count: int, at=NOW, batch: int = 500,
          between: tuple[str, ...] = ()) -> list[dict]:
    """Send `count` large rejected payloads in gateway-sized batches; return the statuses.

    Each batch also carries one valid reading from each device in `between`."""
    statuses: list[dict] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        good = [delivery(d, _valid(f"{d}-{start}")) for d in between]
        result = service.ingest([*good, *(delivery(device_id, LARGE, at) for _ in range(size))])
        statuses.extend(body for _, body in result.statuses)
    return statuses


def _valid(msg_id: str) -> bytes:
    return json.dumps(reading(msg_id, 95)).encode()


def test_a_large_rejected_payload_is_kept_as_a_prefix_with_its_hash_and_size(
        engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, LARGE)])
    [(_, status)] = result.statuses
    assert status["result"] == "rejected" and "not valid JSON" in status["errors"][0]
    [row] = kept(engine, device)
    assert row.payload == LARGE[:4096]
    assert row.size == len(LARGE) and row.sha256 == hashlib.sha256(LARGE).hexdigest()


def test_two_thousand_large_rejections_store_at_most_the_quota_and_each_gets_its_status(
        engine, fixture) -> None:
    flooder, good = fixture["devices"][0]["device_id"], fixture["devices"][1]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    statuses = flood(service, flooder, 2000, between=(good,))
    quota = QuarantineQuota()
    rejected = [s for s in statuses if s["result"] == "rejected"]
    assert len(rejected) == 2000 and all(s["errors"] for s in rejected)
    rows = kept(engine, flooder)
    assert len(rows) <= quota.per_hour
    assert sum(len(r.payload) for r in rows) <= quota.bytes_per_day
    counted = overflow(engine, flooder)
    assert counted is not None
    assert counted.dropped == 2000 - len(rows)
    assert counted.dropped_bytes == counted.dropped * len(LARGE)
    assert counted.last_errors == rejected[-1]["errors"]
    # The well-behaved device sent one reading per batch: every one accepted and stored.
    assert [s["result"] for s in statuses if s not in rejected] == ["accepted"] * 4
    with Session(engine) as session:
        stored = session.exec(select(func.count()).select_from(Observation).where(
            Observation.device_id == good)).one()
    assert stored == 4
    assert overflow(engine, good) is None


def test_another_devices_rejection_is_kept_while_one_device_is_over_its_quota(
        engine, fixture) -> None:
    flooder, other = fixture["devices"][0]["device_id"], fixture["devices"][1]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    flood(service, flooder, 200)
    service.ingest([delivery(other, b"{oops")])
    assert [r.payload for r in kept(engine, other)] == [b"{oops"]


def test_the_byte_quota_per_day_holds_when_the_hourly_count_would_allow_more(
        engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    quota = QuarantineQuota(prefix_bytes=4096, per_hour=60, bytes_per_day=10_000)
    service = IngestService(engine, clock=lambda: NOW, quota=quota)
    for hour in range(3):  # the hourly count starts afresh, the day's bytes do not
        flood(service, device, 20, at=NOW + timedelta(hours=hour))
    assert len(kept(engine, device)) == 2  # 2 x 4096 <= 10,000 < 3 x 4096


def test_an_hour_later_the_device_may_keep_rejections_again(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW,
                            quota=QuarantineQuota(prefix_bytes=100, per_hour=5))
    flood(service, device, 20)
    assert len(kept(engine, device)) == 5
    flood(service, device, 20, at=NOW + timedelta(minutes=61))
    assert len(kept(engine, device)) == 10
    assert overflow(engine, device).dropped == 30  # type: ignore[union-attr]


def test_rejections_beyond_the_quota_still_raise_the_device_alert(engine, demo) -> None:
    from tests.test_scheduler import evening_after_enrolment, run_in_parallel

    now = evening_after_enrolment(engine)
    device, patient = demo["devices"][1]["device_id"], demo["devices"][1]["patient"]
    flood(IngestService(engine, clock=lambda: now), device, 300, at=now)
    run_in_parallel(engine, now + timedelta(minutes=1))
    with Session(engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.rule == "device:rejections",
                                                   col(Alert.patient_id) == patient)).all()
    assert alert.details["rejections"] == 300  # kept and counted together


def test_the_quota_is_configuration(tmp_path) -> None:
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path),
                              "TELEKOL_QUARANTINE_PREFIX_BYTES": "512",
                              "TELEKOL_QUARANTINE_PER_HOUR": "10",
                              "TELEKOL_QUARANTINE_BYTES_PER_DAY": "65536"})
    assert QuarantineQuota.from_settings(settings) == QuarantineQuota(512, 10, 65536)
    assert QuarantineQuota.from_settings(load_settings({"TELEKOL_DATA_DIR": str(tmp_path)})
                                         ) == QuarantineQuota(4096, 60, 1_048_576)
    with pytest.raises(ValueError, match="TELEKOL_QUARANTINE_PER_HOUR"):
        load_settings({"TELEKOL_DATA_DIR": str(tmp_path), "TELEKOL_QUARANTINE_PER_HOUR": "0"})
