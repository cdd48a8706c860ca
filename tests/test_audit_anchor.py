"""The audit chain against a database writer (issue 11, row 6): the key outside the database
(server/audit/log.py), the head anchored outside it (server/audit/anchor.py), the migration of an
unkeyed chain, and what the platform does by itself recorded in the chain."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select
from telekol.server.audit import anchor as audit_anchor
from telekol.server.audit import log as audit
from telekol.server.audit.log import Actor, Entry
from telekol.server.db import UTCDateTime, make_engine
from telekol.server.migrate import alembic_config, upgrade
from telekol.server.models import AuditRecord
from telekol.server.ops.cli import main

from tests.conftest import BACKENDS
from tests.test_audit import chain, fill, tamper

# The attack of the review: drop the triggers, edit a record, recompute every hash with the
# project's own function, in a process of its own that has no access to the data dir.
REWRITE = textwrap.dedent('''
    import sys
    from sqlmodel import Session, col, select
    from telekol.server.audit import log as audit
    from telekol.server.db import make_engine
    from telekol.server.models import AuditRecord

    engine = make_engine(sys.argv[1])
    table = AuditRecord.__table__
    with Session(engine) as session:
        rows = session.exec(select(AuditRecord).order_by(col(AuditRecord.id))).all()
        session.expunge_all()
    rows[1].patient_id = "p-someone-else"
    previous = audit.GENESIS
    for row in rows:
        row.prev_hash = previous
        row.hash = previous = audit.chain_hash(previous, row)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP TRIGGER auditrecord_append_only ON auditrecord")
        else:
            connection.exec_driver_sql("DROP TRIGGER auditrecord_no_update")
        for row in rows:
            connection.execute(table.update().where(table.c.id == row.id).values(
                patient_id=row.patient_id, prev_hash=row.prev_hash, hash=row.hash))
    print("rewritten", len(rows))
''')


def rewrite(engine, tmp_path: Path) -> None:
    """Run the rewrite script as an attacker without the key: another data dir, no key."""
    env = {"PATH": "/usr/bin:/bin", "TELEKOL_DATA_DIR": str(tmp_path / "attacker")}
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", REWRITE, url], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and "rewritten" in done.stdout, done.stderr


def check(engine, anchors=()) -> audit.ChainCheck:
    with Session(engine) as session:
        return audit.verify(session, anchors)


def anchor_now(engine, path: Path) -> audit.Anchor:
    with Session(engine) as session:
        head = audit_anchor.head(session)
    assert head is not None
    audit_anchor.append(path, head)
    return head


def test_a_chain_rewritten_with_the_projects_own_function_without_the_key_is_found(
        engine, tmp_path) -> None:
    fill(engine, 5)
    assert check(engine).ok
    rewrite(engine, tmp_path)
    assert chain(engine)[1].patient_id == "p-someone-else"  # the rewrite took place
    found = check(engine)
    assert not found.ok and found.first_bad_id == chain(engine)[0].id
    assert "without the audit key" in found.reason


@pytest.mark.parametrize(("tampering", "position", "reason"), [
    ("UPDATE auditrecord SET detail = 'nothing to see' WHERE id = {id}", 2, "changed"),
    ("DELETE FROM auditrecord WHERE id = {id}", 3, "missing"),
    ("UPDATE auditrecord SET seq = seq + 100 WHERE id = {id}", 2, "missing"),
])
def test_an_edited_or_deleted_record_is_found(engine, tampering, position, reason) -> None:
    fill(engine, 6)
    rows = chain(engine)
    tamper(engine, tampering.format(id=rows[2].id))
    found = check(engine)
    assert not found.ok and found.first_bad_id == rows[position].id and reason in found.reason


def test_removing_the_newest_records_is_found_by_the_anchored_head(engine, tmp_path) -> None:
    path = tmp_path / "audit-anchors.log"
    fill(engine, 4)
    anchor_now(engine, path)
    fill(engine, 3)
    head = anchor_now(engine, path)
    anchors, forged = audit_anchor.read(path)
    assert forged == 0 and check(engine, anchors).ok and check(engine, anchors).anchors == 2
    newest = chain(engine)[-2:]
    tamper(engine, f"DELETE FROM auditrecord WHERE id >= {newest[0].id}")
    assert check(engine).ok  # the chain alone cannot tell
    found = check(engine, anchors)
    assert not found.ok and "truncated" in found.reason
    assert f"record {head.seq}, the chain ends at {head.seq - 2}" in found.reason


def test_a_table_emptied_behind_the_anchors_is_found(engine, tmp_path) -> None:
    path = tmp_path / "audit-anchors.log"
    fill(engine, 2)
    anchor_now(engine, path)
    tamper(engine, "DELETE FROM auditrecord")
    found = check(engine, audit_anchor.read(path)[0])
    assert not found.ok and "truncated" in found.reason and found.checked == 0


def test_a_rewritten_chain_that_differs_from_an_anchor_is_found_even_under_the_key(
        engine, tmp_path) -> None:
    """An insider with the key rewrites the chain, but the anchored heads still differ."""
    path = tmp_path / "audit-anchors.log"
    fill(engine, 3)
    anchor_now(engine, path)
    rows = chain(engine)
    tamper(engine, f"DELETE FROM auditrecord WHERE id = {rows[-1].id}")
    audit.record(engine, [Entry(Actor(username="insider"), "p1", "read", "Patient/p1", "api")])
    assert check(engine).ok  # a valid chain under the key ...
    found = check(engine, audit_anchor.read(path)[0])
    assert not found.ok and "differs from the head anchored" in found.reason  # ... not his


def test_an_anchor_line_without_the_keys_mac_is_refused(engine, tmp_path) -> None:
    path = tmp_path / "audit-anchors.log"
    fill(engine, 2)
    good = anchor_now(engine, path)
    with path.open("a") as handle:
        handle.write(audit_anchor.line(good).replace(f"seq={good.seq}", "seq=1") + "\n")
        handle.write(f"Dec  8 05:00:00 host telekol: {audit_anchor.line(good)}\n")
    anchors, forged = audit_anchor.read(path)
    assert forged == 1 and [a.seq for a in anchors] == [good.seq, good.seq]


def test_an_intact_chain_verifies_with_its_anchors(engine, tmp_path) -> None:
    path = tmp_path / "audit-anchors.log"
    for _ in range(3):
        fill(engine, 2)
        anchor_now(engine, path)
    found = check(engine, audit_anchor.read(path)[0])
    assert found.ok and found.checked == 6 and found.anchors == 3


def test_a_chain_is_not_valid_under_another_key(engine, audit_key) -> None:
    fill(engine, 2)
    audit.use_key("another key")
    assert not check(engine).ok
    audit.use_key(audit_key)
    assert check(engine).ok


def test_records_are_numbered_and_keyed(engine) -> None:
    fill(engine, 3)
    rows = chain(engine)
    assert [r.seq for r in rows] == [1, 2, 3] and {r.scheme for r in rows} == {audit.KEYED}


# --- the command line --------------------------------------------------------------------

@pytest.fixture
def telekol(engine, tmp_path, monkeypatch, capsys):
    """Return run(*argv) -> (exit status, stdout) on the test database and data dir."""
    monkeypatch.setenv("TELEKOL_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TELEKOL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run(*argv: str) -> tuple[int, str]:
        status = main(list(argv))
        return status, capsys.readouterr().out

    return run


def test_the_command_line_anchors_and_finds_truncation(engine, telekol, tmp_path) -> None:
    fill(engine, 3)
    status, out = telekol("audit", "anchor")
    assert status == 0 and out.startswith("anchored record 3")
    assert (tmp_path / "var" / "audit-anchors.log").stat().st_mode & 0o777 == 0o600
    status, out = telekol("audit", "verify")
    assert status == 0 and "intact: 3 records" in out and "1 anchored heads found" in out
    tamper(engine, f"DELETE FROM auditrecord WHERE id >= {chain(engine)[2].id}")
    status, out = telekol("audit", "verify")
    assert status == 1 and "BROKEN at the end: truncated" in out


def test_the_command_line_reads_a_copy_of_the_anchors(engine, telekol, tmp_path) -> None:
    fill(engine, 2)
    copy = tmp_path / "syslog-export.txt"
    anchor_now(engine, copy)
    tamper(engine, f"DELETE FROM auditrecord WHERE id = {chain(engine)[-1].id}")
    status, out = telekol("audit", "verify", "--anchors", str(copy))
    assert status == 1 and "truncated" in out
    # Its own record took the removed one's place in the chain, with another hash.
    assert telekol("audit", "verify")[0] == 0
    status, out = telekol("audit", "verify", "--anchors", str(copy))
    assert status == 1 and "differs from the head anchored" in out
    assert telekol("audit", "verify", "--anchors", str(tmp_path / "nothing"))[0] == 2


def test_adding_a_device_on_the_command_line_is_in_the_chain(engine, demo, telekol) -> None:
    patient = demo["patients"][0]["id"]
    status, _ = telekol("device", "add", "--patient", patient, "--device-id", "dev-new-1")
    assert status == 0
    status, _ = telekol("device", "add", "--patient", demo["patients"][1]["id"],
                        "--device-id", "dev-new-1")
    assert status == 0
    rows = [r for r in chain(engine) if r.action == "provision"]
    assert [(r.resource, r.patient_id, r.door) for r in rows] == [
        ("Device/dev-new-1", patient, "cli"),
        ("Device/dev-new-1", demo["patients"][1]["id"], "cli")]
    assert rows[0].detail == f"created, assigned to {patient}"
    assert rows[1].detail.startswith(f"re-keyed, moved from {patient}")
    assert rows[0].username and rows[0].username.startswith("os:") and check(engine).ok


# --- an unkeyed chain made before the key (migration e5a1d17c0b2f) -------------------------

LEGACY_ROWS = 4


@pytest.fixture(params=BACKENDS)
def legacy(request, database_factory):
    """Yield an engine on a database holding an unkeyed chain, upgraded to the keyed one."""
    url = database_factory(request.param)
    command.downgrade(alembic_config(url), "c0a7e11d5e01")  # the schema before the key
    engine = make_engine(url)
    insert = text(
        "INSERT INTO auditrecord (at, user_id, username, display_name, role, organization_id, "
        "patient_id, action, resource, door, outcome, status, detail, prev_hash, hash) VALUES "
        "(:at, :user_id, :username, :display_name, :role, :organization_id, :patient_id, "
        ":action, :resource, :door, :outcome, :status, :detail, :prev_hash, :hash)",
    ).bindparams(bindparam("at", type_=UTCDateTime(timezone=True)))
    previous = audit.GENESIS
    with engine.begin() as connection:
        for index in range(LEGACY_ROWS):
            fields = {"at": datetime(2026, 1, index + 1, 10, tzinfo=UTC), "user_id": 7,
                      "username": "nurse.x", "display_name": "Nurse X", "role": "nurse",
                      "organization_id": "muni-aalby", "patient_id": f"p{index}",
                      "action": "read", "resource": f"Patient/p{index}", "door": "api",
                      "outcome": "success", "status": 200, "detail": ""}
            digest = _legacy_hash(previous, fields)
            connection.execute(insert, {**fields, "prev_hash": previous, "hash": digest})
            previous = digest
    upgrade(url)
    yield engine
    engine.dispose()


def _legacy_hash(previous: str, fields: dict) -> str:
    """The unkeyed SHA-256 of the chain before the key, as main computed it."""
    import hashlib
    import json

    canonical = dict(fields, at=fields["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((previous + body).encode()).hexdigest()


def test_an_unkeyed_chain_is_numbered_and_still_verifies_after_the_migration(legacy) -> None:
    rows = chain(legacy)
    assert [(r.seq, r.scheme) for r in rows] == [(i + 1, audit.LEGACY) for i in range(4)]
    assert check(legacy).ok and check(legacy).checked == LEGACY_ROWS
    fill(legacy, 2)
    rows = chain(legacy)
    assert [r.scheme for r in rows[-2:]] == [audit.KEYED] * 2 and rows[-1].seq == 6
    assert check(legacy).ok and check(legacy).checked == 6


def test_an_unkeyed_record_rewritten_after_the_first_keyed_one_is_found(legacy) -> None:
    """The first keyed record seals the unkeyed ones: rewriting them breaks it."""
    fill(legacy, 1)
    with Session(legacy) as session:
        rows = list(session.exec(select(AuditRecord).order_by(col(AuditRecord.id))).all())
        session.expunge_all()
    rows[1].patient_id = "p-other"
    statements = []
    for row in rows[1:LEGACY_ROWS]:  # the unkeyed part, recomputed as the unkeyed function does
        row.prev_hash = rows[rows.index(row) - 1].hash
        row.hash = audit.chain_hash(row.prev_hash, row)
        statements.append(f"UPDATE auditrecord SET patient_id = '{row.patient_id}', prev_hash = "
                          f"'{row.prev_hash}', hash = '{row.hash}' WHERE id = {row.id}")
    tamper(legacy, *statements)
    found = check(legacy)
    assert not found.ok and found.first_bad_id == rows[LEGACY_ROWS].id  # the keyed seal


def test_an_unkeyed_record_after_keyed_ones_is_refused(engine) -> None:
    fill(engine, 2)
    last = chain(engine)[-1]
    tamper(engine, f"UPDATE auditrecord SET scheme = 1 WHERE id = {last.id}")
    found = check(engine)
    assert not found.ok and found.first_bad_id == last.id and "unkeyed" in found.reason


# --- the anchorer: at an interval, on shutdown, to syslog ----------------------------------

def test_the_anchorer_anchors_a_moved_head_once_and_again_when_it_stops(engine, settings) -> None:
    from telekol.server.audit.anchor import Anchorer

    fill(engine, 2)
    anchorer = Anchorer(engine, settings.with_overrides(audit_anchor_seconds=3600))
    assert anchorer.anchor() is not None and anchorer.anchor() is None  # head unchanged
    anchorer.start()  # anchors at once on its thread (nothing new), then waits an hour
    fill(engine, 3)
    anchorer.stop()  # a clean shutdown anchors what was written since
    anchors, forged = audit_anchor.read(settings.audit_anchor_file)
    assert forged == 0 and [a.seq for a in anchors] == [2, 5]
    assert settings.audit_anchor_file.stat().st_mode & 0o777 == 0o600


def test_anchors_also_go_to_syslog_when_configured(engine, settings) -> None:
    import socket

    from telekol.server.audit.anchor import Anchorer

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        port = receiver.getsockname()[1]
        fill(engine, 1)
        anchored = Anchorer(engine, settings.with_overrides(
            audit_anchor_syslog=f"127.0.0.1:{port}")).anchor()
        datagram = receiver.recv(4096).decode()
    assert anchored is not None and audit_anchor.line(anchored) in datagram
    assert audit_anchor.parse([datagram]) == ([anchored], 0)  # a syslog copy verifies too


def test_an_anchorer_that_cannot_reach_the_database_logs_and_carries_on(settings,
                                                                        caplog) -> None:
    from telekol.server.audit.anchor import Anchorer

    gone = make_engine(f"sqlite:///{settings.data_dir / 'missing' / 'none.db'}")
    Anchorer(gone, settings).stop()
    assert "could not anchor" in caplog.text
