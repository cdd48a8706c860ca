"""The audit log's chain (server/audit/log.py): appending, verifying, the database's refusal to
change it, concurrent writers, the command line and the live door."""

from __future__ import annotations

import io
import sys
import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, func, select
from telekol.server.audit import log as audit
from telekol.server.audit.log import GENESIS, Actor, Entry
from telekol.server.migrate import APPEND_ONLY, protect_audit_log
from telekol.server.models import AuditRecord
from telekol.server.ops.cli import main

NURSE = Actor(7, "nurse.x", "Nurse X", "nurse", "muni-aalby")


def entry(patient: str | None = "p1", **changes: Any) -> Entry:
    """Return a read of `patient` by NURSE through the API."""
    fields: dict[str, Any] = {"actor": NURSE, "patient_id": patient, "action": "read",
                              "resource": f"Patient/{patient}", "door": "api",
                              "status": 200}
    return Entry(**{**fields, **changes})


def fill(engine, count: int, **changes: Any) -> None:
    """Append `count` records, one transaction each."""
    for index in range(count):
        audit.record(engine, [entry(f"p{index % 3}", **changes)])


def chain(engine) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).order_by(col(AuditRecord.id))).all())


def check(engine) -> audit.ChainCheck:
    with Session(engine) as session:
        return audit.verify(session)


def tamper(engine, *statements: str) -> None:
    """Run raw SQL behind the service's back, after dropping the append-only triggers."""
    drops = (["DROP TRIGGER auditrecord_append_only ON auditrecord"]
             if engine.dialect.name == "postgresql" else
             ["DROP TRIGGER auditrecord_no_update", "DROP TRIGGER auditrecord_no_delete"])
    with engine.begin() as connection:
        for statement in [*drops, *statements]:
            connection.exec_driver_sql(statement)


@pytest.fixture
def small_batches(monkeypatch) -> None:
    """Verify in batches of 3, so walking the chain crosses batch boundaries."""
    monkeypatch.setattr(audit, "_VERIFY_BATCH", 3)


def test_records_form_a_chain_from_genesis(engine, small_batches) -> None:
    fill(engine, 7)
    rows = chain(engine)
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert check(engine) == audit.ChainCheck(True, 7, last_hash=rows[-1].hash)


def test_records_appended_together_follow_each_other_in_id_order(engine) -> None:
    with Session(engine) as session:
        audit.append(session, [entry(f"p{i}") for i in range(5)])
        session.commit()
    rows = chain(engine)
    assert [r.patient_id for r in rows] == [f"p{i}" for i in range(5)]
    assert check(engine).ok and check(engine).checked == 5


def test_an_empty_log_is_intact(engine) -> None:
    assert check(engine) == audit.ChainCheck(True, 0, None, "", GENESIS)


def test_a_record_keeps_who_did_what_and_how_it_went(engine) -> None:
    audit.record(engine, [entry("p9", action="update", resource="CarePlan/3", door="fhir",
                                outcome="denied", status=403, detail="x" * 900)])
    row = chain(engine)[-1]
    assert (row.user_id, row.username, row.display_name, row.role, row.organization_id) == (
        7, "nurse.x", "Nurse X", "nurse", "muni-aalby")
    assert (row.patient_id, row.action, row.resource, row.door, row.outcome, row.status) == (
        "p9", "update", "CarePlan/3", "fhir", "denied", 403)
    assert len(row.detail) == 500 and row.at.tzinfo is not None  # cut to fit, still chained
    assert check(engine).ok


def _id_of(engine, position: int) -> int:
    return chain(engine)[position].id or 0


@pytest.mark.parametrize(("tampering", "bad_position", "reason"), [
    ("UPDATE auditrecord SET patient_id = 'p-other' WHERE id = {id}", 4, "changed"),
    ("UPDATE auditrecord SET at = at + INTERVAL '1 second' WHERE id = {id}", 4, "changed"),
    ("UPDATE auditrecord SET outcome = 'success', status = 200 WHERE id = {id}", 4, "changed"),
    ("DELETE FROM auditrecord WHERE id = {id}", 4, "missing"),
    ("DELETE FROM auditrecord WHERE id = {first}", 0, "missing"),
    ("UPDATE auditrecord SET hash = '{fake}' WHERE id = {id}", 4, "changed"),
    ("UPDATE auditrecord SET prev_hash = '{fake}' WHERE id = {id}", 4, "missing"),
])
def test_a_changed_or_deleted_record_breaks_the_chain_where_it_happened(
        engine, small_batches, tampering: str, bad_position: int, reason: str) -> None:
    fill(engine, 8, outcome="denied", status=404)
    rows = chain(engine)
    statement = tampering.format(id=rows[4].id, first=rows[0].id, fake="f" * 64)
    if engine.dialect.name == "sqlite":
        statement = statement.replace("at + INTERVAL '1 second'", "'2020-01-01 00:00:00.000000'")
    tamper(engine, statement)
    found = check(engine)
    # After a deletion, the record that followed the deleted one is where the chain breaks.
    broken = rows[bad_position + 1 if tampering.startswith("DELETE") else bad_position]
    assert not found.ok and found.first_bad_id == broken.id
    assert reason in found.reason
    assert found.checked == bad_position
    assert found.last_hash == (rows[bad_position - 1].hash if bad_position else GENESIS)


def test_a_changed_record_with_a_recomputed_hash_breaks_the_chain_at_the_next(engine) -> None:
    fill(engine, 4)
    rows = chain(engine)
    forged = rows[1]
    forged.patient_id = "p-other"
    new_hash = audit.chain_hash(forged.prev_hash, forged)
    tamper(engine, f"UPDATE auditrecord SET patient_id = 'p-other', hash = '{new_hash}' "
                   f"WHERE id = {forged.id}")
    found = check(engine)
    assert not found.ok and found.first_bad_id == rows[2].id and "missing" in found.reason


def test_a_record_inserted_out_of_chain_is_found(engine, small_batches) -> None:
    fill(engine, 4)
    rows = chain(engine)
    tamper(engine, "INSERT INTO auditrecord (at, action, resource, door, outcome, detail, "
                   f"seq, scheme, prev_hash, hash) SELECT at, action, resource, door, outcome, "
                   f"detail, 99, 2, '{'a' * 64}', '{'b' * 64}' FROM auditrecord "
                   f"WHERE id = {rows[1].id}")
    found = check(engine)
    assert not found.ok and found.first_bad_id == max(r.id or 0 for r in rows) + 1
    assert found.checked == 4


def test_deleting_the_newest_records_leaves_a_shorter_intact_chain(engine) -> None:
    """The chain alone cannot see truncation: its anchored heads can (test_audit_anchor)."""
    fill(engine, 5)
    before = check(engine)
    tamper(engine, f"DELETE FROM auditrecord WHERE id = {_id_of(engine, -1)}")
    after = check(engine)
    assert after.ok and after.checked == before.checked - 1
    assert after.last_hash != before.last_hash


@pytest.mark.parametrize("statement", [
    "UPDATE auditrecord SET outcome = 'success'",
    "DELETE FROM auditrecord WHERE id > 0",
    "TRUNCATE auditrecord",  # on SQLite an unqualified DELETE is its truncation
])
def test_the_database_refuses_to_change_or_delete_audit_records(engine, statement) -> None:
    fill(engine, 2, outcome="denied")
    if engine.dialect.name == "sqlite":
        statement = statement.replace("TRUNCATE", "DELETE FROM")
    with pytest.raises(DBAPIError, match=APPEND_ONLY), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    assert [r.outcome for r in chain(engine)] == ["denied", "denied"]


def test_protecting_the_log_again_is_harmless_and_keeps_refusing(engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    protect_audit_log(url)
    protect_audit_log(url)
    fill(engine, 1)
    with pytest.raises(DBAPIError, match=APPEND_ONLY), engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM auditrecord")


def test_two_writers_appending_at_once_leave_one_intact_chain(engine) -> None:
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            start.wait()
            for index in range(200):
                audit.record(engine, [entry(f"{name}-{index}")])
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    found = check(engine)
    assert found.ok and found.checked == 400
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(AuditRecord)).one() == 400


@pytest.mark.parametrize(("criteria", "expected"), [
    ({}, [5, 4, 3, 2, 1, 0]),
    ({"patient_id": "p1"}, [4, 1]),
    ({"door": "fhir"}, [5, 3, 1]),
    ({"action": "search", "door": "fhir"}, [3]),
    ({"organization_id": "gp-torvet"}, [5, 2]),
    ({"user_id": 7, "patient_id": "p0"}, [3, 0]),
    ({"limit": 2}, [5, 4]),
    ({"before_position": 3}, [2, 1, 0]),
])
def test_search_finds_matching_records_newest_first(engine, criteria, expected) -> None:
    gp = Actor(8, "gp.y", "GP Y", "gp", "gp-torvet")
    for index in range(6):
        audit.record(engine, [entry(f"p{index % 3}", door="fhir" if index % 2 else "api",
                                    action="search" if index == 3 else "read",
                                    actor=gp if index in (2, 5) else NURSE)])
    ids = [r.id for r in chain(engine)]
    criteria = dict(criteria)
    if "before_position" in criteria:
        criteria["before_id"] = ids[criteria.pop("before_position")]
    with Session(engine) as session:
        found = audit.search(session, **criteria)
    assert [r.id for r in found] == [ids[i] for i in expected]


def test_the_access_log_lists_a_patients_records_newest_first_in_pages(engine) -> None:
    fill(engine, 9)
    with Session(engine) as session:
        first = audit.access_log(session, "p1", limit=2)
        rest = audit.access_log(session, "p1", before_id=first[-1].id)
    assert [r.patient_id for r in first + rest] == ["p1"] * 3
    assert [r.id for r in first + rest] == sorted((r.id for r in first + rest), reverse=True)


# --- the command line --------------------------------------------------------------------

@pytest.fixture
def telekol(engine, tmp_path, monkeypatch, capsys):
    """Return run(*argv) -> (exit status, stdout) on the test database."""
    monkeypatch.setenv("TELEKOL_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TELEKOL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run(*argv: str) -> tuple[int, str]:
        status = main(list(argv))
        return status, capsys.readouterr().out

    return run


def test_the_command_line_verifies_the_chain_and_exits_1_when_broken(engine, telekol) -> None:
    fill(engine, 3)
    status, out = telekol("audit", "verify")
    assert status == 0 and out.startswith("intact: 3 records")
    tamper(engine, f"UPDATE auditrecord SET resource = 'x' WHERE id = {_id_of(engine, 1)}")
    status, out = telekol("audit", "verify")
    assert status == 1 and f"BROKEN at record {_id_of(engine, 1)}" in out


def test_the_command_line_searches_by_patient_and_is_audited_itself(engine, telekol) -> None:
    import json

    fill(engine, 6)
    status, out = telekol("audit", "search", "--patient", "p2", "--json")
    found = json.loads(out)
    assert status == 0 and [r["patient_id"] for r in found] == ["p2", "p2"]
    assert all(len(r["hash"]) == 64 for r in found)
    own = chain(engine)[-1]
    assert (own.door, own.action, own.patient_id, own.detail) == (
        "cli", "search", None, "patient_id=p2")
    assert own.username and own.username.startswith("os:")
    assert check(engine).ok


def test_adding_a_patient_on_the_command_line_is_audited(engine, telekol) -> None:
    status, out = telekol("patient", "add", "--cpr", "050560-9996", "--given", "Anna",
                          "--family", "Lund", "--team", "muni-aalby", "gp-torvet")
    assert status == 0
    row = chain(engine)[-1]
    assert (row.door, row.action, row.patient_id) == ("cli", "create", out.strip())


# --- the live door -----------------------------------------------------------------------

class FakeSocketIO:
    """Records what the bridge would emit."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, list[str]]] = []

    def emit(self, kind: str, data: Any, *, to: list[str], namespace: str) -> None:
        self.emitted.append((kind, data, to))


def alert_event(patient: str, alert_id: int, orgs: list[str]) -> dict[str, Any]:
    rooms = [f"org:{o}" for o in orgs] + [f"patient:{patient}"]
    return {"type": "alert", "rooms": rooms, "data": {"id": alert_id,
                                                       "patient": {"id": patient}}}


TAB_NURSE = audit.Actor(1, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby")
TAB_GP = audit.Actor(2, "gp.torvet", "Praktiserende læge Ole Berg", "gp", "gp-torvet")


@pytest.fixture
def bridge(engine, settings):
    """Return a bridge whose process has the nurse (in two tabs) and the GP connected."""
    from telekol.server.web.live import LiveBridge, Viewers

    # Made-up patients (p1...): the rooms are taken as addressed (live_sight is tested apart).
    made = LiveBridge(settings, FakeSocketIO(), engine,  # type: ignore[arg-type]
                      sight=lambda _engine, batch: batch)
    made.viewers = Viewers()
    made.viewers.add("tab-1", TAB_NURSE, ["org:muni-aalby"])
    made.viewers.add("tab-2", TAB_NURSE, ["org:muni-aalby"])
    made.viewers.add("tab-3", TAB_GP, ["org:gp-torvet"])
    return made


def test_every_event_pushed_to_a_connected_user_is_recorded_before_the_push(
        engine, bridge) -> None:
    batch = [alert_event("p1", 5, ["gp-torvet", "muni-aalby"]), alert_event("p2", 6, ["x"])]
    bridge.deliver(batch)
    rows = chain(engine)
    # Once per user, however many tabs; an event nobody is connected to see is no disclosure.
    assert [(r.patient_id, r.username, r.organization_id, r.action, r.door, r.resource)
            for r in rows] == [
        ("p1", "nurse.aalby", "muni-aalby", "push", "live", "alert/5"),
        ("p1", "gp.torvet", "gp-torvet", "push", "live", "alert/5")]
    assert len({r.at for r in rows}) == 1  # one transaction per broker message
    assert [kind for kind, _, _ in bridge.sio.emitted] == ["alert", "alert"]


def observation_event(patient: str, observation_id: str, orgs: list[str]) -> dict[str, Any]:
    rooms = [f"org:{o}" for o in orgs] + [f"patient:{patient}"]
    return {"type": "observation", "rooms": rooms,
            "data": {"id": observation_id, "patient": {"id": patient}}}


def test_a_batch_is_recorded_once_per_user_and_patient_naming_every_event(engine,
                                                                          bridge) -> None:
    batch = [alert_event("p1", 5, ["muni-aalby"]), observation_event("p1", "x", ["muni-aalby"]),
             observation_event("p2", "y", ["muni-aalby", "gp-torvet"]),
             observation_event("p1", "z", ["muni-aalby"])]
    bridge.deliver(batch)
    assert [(r.username, r.patient_id, r.resource, r.detail) for r in chain(engine)] == [
        ("nurse.aalby", "p1", "alert/5,observation/x,observation/z", "3 live events"),
        ("nurse.aalby", "p2", "observation/y", ""),
        ("gp.torvet", "p2", "observation/y", "")]
    assert len(bridge.sio.emitted) == 4


def test_a_long_batch_names_what_fits_and_counts_the_rest() -> None:
    from telekol.server.web.live import _listed

    resources = [f"observation/{index:032d}" for index in range(40)]
    listed = _listed(resources)
    assert len(listed) <= 300 and listed.endswith(f",+{40 - listed.count('observation/')} more")
    assert _listed(resources[:2]) == ",".join(resources[:2])


def test_bulk_appends_keep_the_chain_intact_between_single_ones(engine, bridge) -> None:
    audit.record(engine, [entry()])
    bridge.deliver([alert_event("p1", 5, ["gp-torvet", "muni-aalby"])])
    audit.record(engine, [entry()])
    bridge.deliver([alert_event("p1", 6, ["muni-aalby"]), alert_event("p3", 7, ["gp-torvet"])])
    with Session(engine) as session:
        check = audit.verify(session)
    assert check.ok and check.checked == 2 + 2 + 2


def test_broker_messages_are_audited_and_pushed_by_the_delivery_thread(engine, bridge) -> None:
    from telekol.server import events

    class Message:
        topic = events.EVENTS_TOPIC
        payload = events.encode([alert_event("p1", 5, ["muni-aalby"])])

    bridge._on_message(None, None, Message())  # paho's network thread only queues it
    bridge._on_message(None, None, Message())
    assert chain(engine) == [] and bridge.sio.emitted == []
    bridge.arrived.put(None)  # stop after what has arrived
    bridge.worker.start()
    bridge.worker.join(timeout=20)
    [row] = chain(engine)  # both messages delivered as one batch: one record
    assert (row.resource, len(bridge.sio.emitted)) == ("alert/5,alert/5", 2)


def test_a_user_who_has_disconnected_is_not_recorded_as_shown_an_event(engine, bridge) -> None:
    bridge.viewers.remove("tab-3")
    bridge.deliver([alert_event("p1", 5, ["gp-torvet", "muni-aalby"])])
    assert [r.username for r in chain(engine)] == ["nurse.aalby"]


def test_a_live_event_that_cannot_be_audited_is_not_pushed_and_the_bridge_lives_on(
        engine, bridge, caplog) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE auditrecord RENAME TO auditrecord_gone")
    bridge.deliver([alert_event("p1", 5, ["gp-torvet"])])
    assert bridge.sio.emitted == []
    assert "not pushed" in caplog.text
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE auditrecord_gone RENAME TO auditrecord")
    bridge.deliver([alert_event("p1", 7, ["gp-torvet"])])
    assert len(bridge.sio.emitted) == 1 and chain(engine)[-1].resource == "alert/7"


def test_a_live_connection_is_recorded_with_its_rooms(engine, demo, settings) -> None:
    from telekol.server.demo.seed import DEMO_PASSWORD
    from telekol.server.web import create_app
    from telekol.server.web.extensions import socketio

    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    token = app.test_client().post("/api/auth/token", json={
        "username": "patient.karen", "password": DEMO_PASSWORD}).get_json()["access_token"]
    client = socketio.test_client(app, namespace="/live", auth={"token": token})
    assert client.is_connected("/live")
    client.disconnect("/live")
    karen = next(u["patient"] for u in demo["users"] if u["username"] == "patient.karen")
    row = chain(engine)[-1]
    assert (row.door, row.action, row.username, row.patient_id, row.resource) == (
        "live", "subscribe", "patient.karen", karen, f"rooms:patient:{karen}")


def test_appending_leaves_the_commit_to_the_caller(engine) -> None:
    """`append` leaves the commit to its caller: nothing is kept after a rollback."""
    with Session(engine) as session:
        audit.append(session, [entry()])
        session.rollback()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM auditrecord")).scalar() == 0
