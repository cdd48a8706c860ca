"""The ingest service on a real database (SQLite, and PostgreSQL when it answers)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event
from sqlmodel import Session, col, func, select
from telekol.server.accounts.devices import provision_device
from telekol.server.alerts.context_cache import ContextCache
from telekol.server.db import session_scope
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import (
    Alert,
    Device,
    InboundMessage,
    Observation,
    QuarantinedMessage,
)

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture
def fixture(demo):
    """Return the demo fixture already in the database."""
    return demo


def delivery(device_id: str, *objects: dict, raw: bytes | None = None) -> ParsedDelivery:
    """Parse a payload as the gateway would."""
    payload = raw if raw is not None else json.dumps(
        objects[0] if len(objects) == 1 else list(objects)).encode()
    return ParsedDelivery(f"telekol/v1/devices/{device_id}/measurements", device_id, NOW,
                          parse_measurements(payload, NOW), payload)


def reading(msg_id: str, spo2: float, minutes_ago: int = 1) -> dict:
    """Return one measurement object."""
    taken = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return {"msg_id": msg_id, "taken_at": taken,
            "readings": [{"code": "spo2", "value": spo2}]}


def count(engine, model) -> int:
    """Count the rows of a table."""
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_a_measurement_becomes_observations_and_an_accepted_status(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device,
                                                                        reading("m1", 95))])
    assert result.statuses == [(device, {"msg_id": "m1", "result": "accepted", "errors": []})]
    assert count(engine, Observation) == 1
    assert [e["type"] for e in result.events] == ["observation"]


@pytest.mark.parametrize(("spo2", "severity", "interpretation"), [
    (87, "red", "LL"), (88, "yellow", "L"), (91, "yellow", "L"), (92, None, "N"),
])
def test_spo2_is_triaged_against_the_patients_own_limits(engine, fixture, spo2, severity,
                                                         interpretation) -> None:
    device = fixture["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device,
                                                                        reading("m", spo2))])
    alerts = [e["data"] for e in result.events if e["type"] == "alert"]
    assert [a["severity"] for a in alerts] == ([severity] if severity else [])
    with Session(engine) as session:
        stored = json.loads(session.exec(select(Observation)).one().resource)
    assert stored["interpretation"][0]["coding"][0]["code"] == interpretation
    ranges = {r["type"]["coding"][0]["code"]: r for r in stored["referenceRange"]}
    assert ranges["RAL"]["low"]["value"] == 88 and ranges["GAL"]["low"]["value"] == 92


def test_alert_events_go_only_to_the_care_team_and_the_patient(engine, fixture) -> None:
    device, patient = fixture["devices"][0]["device_id"], fixture["patients"][0]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device,
                                                                        reading("m", 80))])
    alert = next(e for e in result.events if e["type"] == "alert")
    assert sorted(alert["rooms"]) == sorted(
        [f"org:{org}" for org in patient["care_team"]] + [f"patient:{patient['id']}"])
    assert alert["data"]["patient"] == {"id": patient["id"], "display": patient["name"]}


def test_a_repeat_is_a_duplicate_even_within_one_batch(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    first = service.ingest([delivery(device, reading("same", 95)),
                            delivery(device, reading("same", 95))])
    again = service.ingest([delivery(device, reading("same", 95))])
    assert [s["result"] for _, s in first.statuses + again.statuses] == [
        "accepted", "duplicate", "duplicate"]
    assert count(engine, InboundMessage) == 1
    assert count(engine, Observation) == 1


def test_an_array_keeps_the_valid_objects_and_rejects_the_others(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(
        device, reading("ok-1", 95), reading("bad", 130), reading("ok-2", 96))])
    assert [s["result"] for _, s in result.statuses] == ["accepted", "rejected", "accepted"]
    assert count(engine, Observation) == 2
    assert count(engine, QuarantinedMessage) == 1


def test_garbage_is_quarantined_with_its_raw_payload(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, raw=b"{oops")])
    with Session(engine) as session:
        row = session.exec(select(QuarantinedMessage)).one()
    assert row.payload == b"{oops" and row.errors and row.device_id == device


def test_a_device_without_a_patient_is_rejected_with_a_reason(engine, fixture) -> None:
    with session_scope(engine) as session:
        provision_device(session, patient_id=None, device_id="spare-1", password="pw")
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery("spare-1",
                                                                        reading("m", 95))])
    assert result.statuses[0][1]["result"] == "rejected"
    assert "not assigned to a patient" in result.statuses[0][1]["errors"][0]
    assert count(engine, Observation) == 0


def test_a_key_another_gateway_stored_first_is_answered_duplicate(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("race", 95))])
    result = IngestService(engine, clock=lambda: NOW).ingest(
        [delivery(device, reading("race", 95)), delivery(device, reading("fresh", 95))])
    assert [s["result"] for _, s in result.statuses] == ["duplicate", "accepted"]


def test_two_gateways_racing_for_the_same_keys_store_each_exactly_once(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    batches = [[delivery(device, reading(f"k{i}-{j}", 95)) for j in range(5)] for i in range(6)]
    start = threading.Barrier(2)
    answers: list[str] = []

    def gateway() -> None:
        service = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
        start.wait(timeout=10)
        for batch in batches:
            answers.extend(s["result"] for _, s in service.ingest(batch).statuses)

    threads = [threading.Thread(target=gateway) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == ["accepted"] * 30 + ["duplicate"] * 30
    assert count(engine, InboundMessage) == count(engine, Observation) == 30


def test_device_metadata_is_kept(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    body = {**reading("meta", 95), "device": {"model": "Nonin 3230", "battery": 64}}
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, body)])
    with Session(engine) as session:
        row = session.get(Device, device)
    assert (row.model, row.battery, row.last_seen_at) == ("Nonin 3230", 64, NOW)


def test_alerts_are_stored_with_the_reading_they_explain(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("r", 85))])
    with Session(engine) as session:
        alert = session.exec(select(Alert)).one()
        observation = session.get(Observation, alert.observation_id)
    assert observation is not None and observation.value == 85
    assert alert.reason.startswith("SpO2 85 % is below the red limit 88 %")


def test_a_nul_byte_payload_is_quarantined_exactly_on_every_backend(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    raw = b'\x00{"msg_id": "\x00"}\xff'
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, raw=raw)])
    assert result.statuses[0][1]["result"] == "rejected"
    with Session(engine) as session:
        assert session.exec(select(QuarantinedMessage)).one().payload == raw


def test_device_text_with_control_characters_is_rejected(engine, fixture) -> None:
    device = fixture["devices"][0]["device_id"]
    body = {**reading("ctl", 95), "device": {"model": "evil\u0000model"}}
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, body)])
    assert result.statuses[0][1]["result"] == "rejected"
    assert count(engine, Observation) == 0


def test_blood_pressure_limits_apply_to_each_component(engine, fixture) -> None:
    from telekol.server.models import Threshold

    patient, device = fixture["patients"][0]["id"], fixture["devices"][0]["device_id"]
    with session_scope(engine) as session:  # the patient's own limits replace the programme's
        session.execute(delete(Threshold).where(col(Threshold.patient_id) == patient))
        session.add(Threshold(patient_id=patient, measurement="bp_sys", red_high=180,
                              yellow_high=160, set_by="Dr. Test"))
        session.add(Threshold(patient_id=patient, measurement="bp_dia", yellow_high=95,
                              set_by="Dr. Test"))
    body = {"msg_id": "bp-high", "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
            "readings": [{"code": "bp_sys", "value": 185}, {"code": "bp_dia", "value": 100}]}
    result = IngestService(engine, clock=lambda: NOW).ingest([delivery(device, body)])
    alerts = sorted((e["data"]["severity"], e["data"]["reason"].split(" ")[0])
                    for e in result.events if e["type"] == "alert")
    assert alerts == [("red", "Systolic"), ("yellow", "Diastolic")]
    with Session(engine) as session:
        stored = json.loads(session.exec(select(Observation)).one().resource)
    assert stored["interpretation"][0]["coding"][0]["code"] == "HH"


def _has_empty_list(node: object) -> bool:
    if isinstance(node, list):
        return not node or any(_has_empty_list(item) for item in node)
    if isinstance(node, dict):
        return any(_has_empty_list(value) for value in node.values())
    return False


@pytest.mark.parametrize("code", ["spo2", "fev1", "fvc", "pef", "weight", "temperature"])
def test_stored_observations_hold_no_empty_arrays(engine, fixture, code) -> None:
    # FHIR forbids empty arrays and fhir.resources does not check it.
    device = fixture["devices"][0]["device_id"]
    value = {"spo2": 95, "fev1": 1.2, "fvc": 2.0, "pef": 300, "weight": 70,
             "temperature": 37}[code]
    body = {"msg_id": f"e-{code}", "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
            "readings": [{"code": code, "value": value}]}
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, body)])
    with Session(engine) as session:
        stored = json.loads(session.exec(select(Observation)).one().resource)
    assert not _has_empty_list(stored)


class Statements:
    """Count the SQL statements an engine runs and the rows they write (executemany rows)."""

    def __init__(self, engine) -> None:
        self.engine, self.seen = engine, []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, _parameters, context, _executemany) -> None:
        # One parameter set per row, also when SQLAlchemy renders many rows into one
        # INSERT .. VALUES (..), (..) RETURNING.
        rows = len(context.compiled_parameters) if context.compiled_parameters else 1
        self.seen.append((" ".join(statement.split()[:3]).upper(), rows))

    def stop(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def starting(self, prefix: str) -> list[int]:
        return [rows for text, rows in self.seen if text.startswith(prefix)]


def burst(device: str, tag: str, count: int) -> ParsedDelivery:
    """Return one delivery holding `count` normal readings (a hub's backlog)."""
    return delivery(device, *[{**reading(f"{tag}-{i}", 95 + i % 3, minutes_ago=count - i),
                               "readings": [{"code": "spo2", "value": 95 + i % 3},
                                            {"code": "pulse", "value": 70 + i % 5}]}
                              for i in range(count)])


def test_a_batch_is_one_insert_per_table_whatever_its_size(engine, fixture) -> None:
    devices = [d["device_id"] for d in fixture["devices"][:3]]
    service = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
    service.ingest([burst(d, f"warm-{d}", 1) for d in devices])  # contexts now kept
    counted = []
    for size in (2, 20):
        statements = Statements(engine)
        result = service.ingest([burst(d, f"n{size}-{d}", size) for d in devices])
        statements.stop()
        assert {s["result"] for _, s in result.statuses} == {"accepted"}
        counted.append(len(statements.seen))
        assert statements.starting("INSERT INTO INBOUNDMESSAGE") == [3 * size]
        assert statements.starting("INSERT INTO OBSERVATION") == [3 * size * 2]
        assert statements.starting("UPDATE DEVICE SET") == [3]
    assert counted[0] == counted[1]  # ten times the readings, the same statements


def test_a_hubs_backlog_costs_in_proportion_to_its_length(engine, fixture, monkeypatch) -> None:
    from telekol.server.alerts.rules.snapshot import ReadingIndex

    indexed = []
    add = ReadingIndex.add
    monkeypatch.setattr(ReadingIndex, "add", lambda self, r: (indexed.append(1), add(self, r)))
    service = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
    cost = {}
    for size, device in ((40, fixture["devices"][0]["device_id"]),
                         (160, fixture["devices"][1]["device_id"])):
        service.ingest([burst(device, f"warm-{size}", 1)])
        indexed.clear()
        statements = Statements(engine)
        service.ingest([burst(device, f"backlog-{size}", size)])
        statements.stop()
        cost[size] = (len(statements.seen), sum(rows for _, rows in statements.seen),
                      len(indexed))
    assert cost[160][0] == cost[40][0]  # statements: a constant per batch
    # Rows written and readings indexed grow by the same amount per object: 1 ledger row
    # and 2 Observations; each reading indexed once for the rules, once kept after commit.
    assert cost[160][1] - cost[40][1] == 120 * 3
    assert cost[160][2] - cost[40][2] == 120 * 4


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]


def test_the_rules_run_before_the_batch_writes_anything(engine, fixture, monkeypatch) -> None:
    # On SQLite the first write takes the database's one write lock until the commit: the
    # batch's Python work comes first, so the web server's audit records get in meanwhile.
    from telekol.server.alerts import rules

    device = fixture["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
    service.ingest([burst(device, "warm", 1)])
    seen: list[str] = []
    listener = lambda _c, _cur, statement, *_: seen.append(statement.lstrip().upper())  # noqa: E731
    evaluate = rules.evaluate
    others_wrote: list[bool] = []

    def evaluating(reading, ctx):
        seen.append("RULES")
        others_wrote.append(_another_connection_can_write(engine))
        return evaluate(reading, ctx)

    monkeypatch.setattr(rules, "evaluate", evaluating)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = service.ingest([burst(device, "order", 5)])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert {s["result"] for _, s in result.statuses} == {"accepted"}
    last_rules = max(i for i, s in enumerate(seen) if s == "RULES")
    assert _writes(seen[:last_rules]) == []
    assert _writes(seen[last_rules:])  # the ledger, the Observations, the devices
    assert others_wrote and all(others_wrote)


def _another_connection_can_write(engine) -> bool:
    """Return whether a second connection could start writing at once (no lock wait)."""
    if engine.dialect.name != "sqlite":
        return True  # PostgreSQL locks rows, not the database
    import sqlite3

    connection = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def test_a_key_stored_elsewhere_meanwhile_leaves_no_trace_of_ours(engine, fixture,
                                                                   monkeypatch) -> None:
    # The batch does its Python work before it claims its keys; a key another gateway
    # stores in between is a duplicate, and nothing recorded for it survives: no second
    # Observation, no event, no reading kept twice for the rules (the kept inputs hold the
    # other gateway's reading once, as a fresh load would).
    from telekol.server.alerts import rules

    device = fixture["devices"][0]["device_id"]
    ours = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
    ours.ingest([delivery(device, reading("warm", 95, minutes_ago=30))])
    evaluate = rules.evaluate
    raced: list[bool] = []

    def evaluating(reading_, ctx):
        if not raced:
            raced.append(True)
            IngestService(engine, clock=lambda: NOW).ingest(
                [delivery(device, reading("contested", 80, minutes_ago=2))])
        return evaluate(reading_, ctx)

    monkeypatch.setattr(rules, "evaluate", evaluating)
    result = ours.ingest([delivery(device, reading("contested", 80, minutes_ago=2)),
                          delivery(device, reading("mine", 95))])
    assert [s["result"] for _, s in result.statuses] == ["duplicate", "accepted"]
    assert count(engine, InboundMessage) == 3
    assert count(engine, Observation) == 3
    assert {e["data"].get("msg_id") for e in result.events if e["type"] == "observation"} == {
        "mine"}
    assert not [e for e in result.events if e["type"] == "alert"]  # the other one raised it
    kept = ours.cache.kept[fixture["patients"][0]["id"]].history.by_code["spo2"][1]
    assert sorted(r.value for r in kept) == [80, 95, 95]  # "contested" once: the other's
