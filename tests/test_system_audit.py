"""What the platform does by itself is in the keyed audit chain (server/audit/system.py):
devices' stored batches (one INSERT per batch), provisioning and the scheduler's decisions."""

from __future__ import annotations

from sqlalchemy import event
from sqlmodel import Session
from telekol.server.alerts.scheduler import Scheduler, ensure_defaults
from telekol.server.audit import log as audit
from telekol.server.audit.system import stored_batch
from telekol.server.ingest.batch import IngestService
from telekol.server.models import Device

from tests.test_audit import chain
from tests.test_ingest import NOW, delivery, reading
from tests.test_scheduler import evening_after_enrolment


def audit_inserts(engine) -> list[str]:
    """Start counting the INSERT statements into the audit table; return the list."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO AUDITRECORD"):
            seen.append(statement)

    return seen


def test_a_stored_batch_is_one_record_per_device_and_patient_in_one_insert(engine,
                                                                         demo) -> None:
    first, second = demo["devices"][0], demo["devices"][1]
    inserts = audit_inserts(engine)
    IngestService(engine, clock=lambda: NOW).ingest([
        delivery(first["device_id"], reading("a1", 95), reading("a2", 96, 2)),
        delivery(second["device_id"], reading("b1", 94)),
        delivery(first["device_id"], reading("a3", 97, 3))])
    assert len(inserts) == 1
    rows = chain(engine)
    found = [(r.username, r.role, r.patient_id, r.action, r.door, r.detail) for r in rows]
    assert found == sorted([
        (first["device_id"], "device", first["patient"], "create", "mqtt", "3 stored: a1,a2,a3"),
        (second["device_id"], "device", second["patient"], "create", "mqtt", "1 stored: b1")])
    assert rows[0].resource == f"Observation?device={rows[0].username}"
    with Session(engine) as session:
        assert audit.verify(session).ok


def test_duplicates_and_rejections_store_nothing_and_record_nothing(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    service.ingest([delivery(device, reading("a1", 95))])
    before = len(chain(engine))
    inserts = audit_inserts(engine)
    service.ingest([delivery(device, reading("a1", 95)), delivery(device, reading("x", 101))])
    assert len(chain(engine)) == before and inserts == []


def test_a_device_moved_to_another_patient_is_recorded_for_the_new_one(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    other = demo["patients"][-1]["id"]
    with Session(engine) as session:
        row = session.get(Device, device)
        assert row is not None
        row.patient_id = other
        session.add(row)
        session.commit()
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("m1", 95))])
    assert [(r.username, r.patient_id) for r in chain(engine)] == [(device, other)]


def test_a_long_batch_names_what_fits(engine) -> None:
    [entry] = stored_batch({("dev-1", "p1"): [f"OXI-{index:058d}" for index in range(30)]})
    assert len(entry.detail) <= 500 and entry.detail.startswith("30 stored: OXI-")
    assert entry.detail.endswith(",+more")


def test_the_schedulers_missing_data_alerts_are_in_the_chain(engine, demo) -> None:
    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    raised = Scheduler(engine, lambda _batch: None, clock=lambda: now).run_once()
    rows = [r for r in chain(engine) if r.door == "scheduler"]
    # Three occurrences missing per patient (test_scheduler): one alert raised, updated twice.
    assert len(rows) == len(raised) == 3 * len(demo["patients"])
    assert {r.username for r in rows} == {"telekol-scheduler"}
    created = [r.patient_id for r in rows if r.action == "create"]
    assert sorted(created) == sorted(p["id"] for p in demo["patients"])
    assert all(r.detail.startswith("raised: missing:spo2 blue") for r in rows)
    assert {r.resource for r in rows} == {f"Alert/{e['data']['id']}" for e in raised}
    with Session(engine) as session:
        assert audit.verify(session).ok
