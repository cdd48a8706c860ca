"""What the platform counts (server/metrics.py), read back from prometheus-client's registry.

These run in one process with the metrics in memory; adding up several processes is
tests/test_metrics_files.py. Each test reads a value before and after, since the registry
lives as long as the test process.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import create_engine
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, select
from telekol.server import metrics
from telekol.server.audit import log as audit
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.ingest.batch import IngestService
from telekol.server.models import Patient
from telekol.server.web import create_app

from tests.test_ingest import NOW, delivery, reading


def value(name: str, **labels: str) -> float:
    """Return a sample's current value (0 before it first moves)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def app(engine, demo, settings) -> Flask:
    """Return an app on a seeded database, without the live MQTT bridge."""
    url = engine.url.render_as_string(hide_password=False)
    made = create_app(settings.with_overrides(database_url=url), live=False)
    made.config["fixture"] = demo
    return made


def karen(app: Flask) -> dict[str, Any]:
    """Return the demo patient who has a login of her own (she may read her record)."""
    fixture = app.config["fixture"]
    own = next(u["patient"] for u in fixture["users"] if u["username"] == "patient.karen")
    return next(p for p in fixture["patients"] if p["id"] == own)


def bearer(app: Flask, username: str) -> dict[str, str]:
    """Return an Authorization header for a demo user."""
    response = app.test_client().post("/api/auth/token", json={
        "username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


# --- ingest -------------------------------------------------------------------------------

def test_a_batch_counts_each_status_by_result_and_times_its_transaction(engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    before = {r: value("telekol_ingest_statuses_total", result=r) for r in metrics.RESULTS}
    commits = value("telekol_ingest_commit_seconds_count")
    service.ingest([delivery(device, reading("m1", 95), reading("m2", 96))])
    service.ingest([delivery(device, reading("m1", 95), {"msg_id": "m3", "taken_at": "x",
                                                         "readings": []})])
    moved = {r: value("telekol_ingest_statuses_total", result=r) - before[r]
             for r in metrics.RESULTS}
    assert moved == {"accepted": 2, "duplicate": 1, "rejected": 1}
    assert value("telekol_ingest_commit_seconds_count") - commits == 2


def test_a_red_reading_counts_one_alert_created_once_its_transaction_commits(
        engine, demo) -> None:
    device = demo["devices"][0]["device_id"]
    red = value("telekol_alerts_total", severity="red", action="created")
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("low", 80))])
    assert value("telekol_alerts_total", severity="red", action="created") - red == 1


def test_an_alert_written_in_a_transaction_that_rolls_back_is_not_counted(engine) -> None:
    before = value("telekol_alerts_total", severity="yellow", action="updated")
    with Session(engine) as session:
        session.exec(select(Patient)).first()
        metrics.alert_written(session, "yellow", "updated")
        session.rollback()
        session.commit()  # a later commit of the same session carries nothing over
    assert value("telekol_alerts_total", severity="yellow", action="updated") == before


# --- the gateway's batches -----------------------------------------------------------------

def test_a_stored_batch_records_its_size_each_messages_lag_and_the_queue_behind_it() -> None:
    sizes, lags = value("telekol_gateway_batch_size_count"), value(
        "telekol_gateway_lag_seconds_count")
    quick = value("telekol_gateway_lag_seconds_bucket", le="0.05")
    received = [NOW - timedelta(milliseconds=20), NOW - timedelta(seconds=3)]
    metrics.batch_stored(received, NOW, waiting=7)
    assert value("telekol_gateway_batch_size_count") - sizes == 1
    assert value("telekol_gateway_lag_seconds_count") - lags == 2
    assert value("telekol_gateway_lag_seconds_bucket", le="0.05") - quick == 1
    assert value("telekol_gateway_queue_depth") == 7


# --- live pushes ---------------------------------------------------------------------------

class FakeSocketIO:
    """Records what the bridge would emit."""

    def __init__(self) -> None:
        self.emitted: list[str] = []

    def emit(self, kind: str, _data: Any, *, to: list[str], namespace: str) -> None:
        self.emitted.append(kind)


NURSE = audit.Actor(1, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby")
GP = audit.Actor(2, "gp.torvet", "Praktiserende læge Ole Berg", "gp", "gp-torvet")


def alert_event(alert_id: int, orgs: list[str]) -> dict[str, Any]:
    """Return an alert event for patient p1 as the gateway publishes it."""
    return {"type": "alert", "rooms": [f"org:{o}" for o in orgs] + ["patient:p1"],
            "data": {"id": alert_id, "patient": {"id": "p1", "display": "P"},
                     "severity": "red"}}


def test_a_pushed_batch_counts_its_events_and_each_user_it_reached_once(
        engine, settings) -> None:
    from telekol.server.web.live import LiveBridge, Viewers

    # Made-up patient p1: the rooms are taken as addressed (live_sight is tested apart).
    bridge = LiveBridge(settings, FakeSocketIO(), engine,  # type: ignore[arg-type]
                        sight=lambda _engine, batch: batch)
    bridge.viewers = Viewers()
    for sid, actor, room in [("tab-1", NURSE, "org:muni-aalby"),
                             ("tab-2", NURSE, "org:muni-aalby"), ("tab-3", GP, "org:gp-torvet")]:
        bridge.viewers.add(sid, actor, [room])
    pushed, reached = value("telekol_live_events_pushed_total", type="alert"), value(
        "telekol_live_viewers_reached_total")
    bridge.deliver([alert_event(5, ["muni-aalby", "gp-torvet"]), alert_event(6, ["muni-aalby"])])
    assert value("telekol_live_events_pushed_total", type="alert") - pushed == 2
    assert value("telekol_live_viewers_reached_total") - reached == 2  # nurse (2 tabs), GP
    assert value("telekol_live_connections") == 3


def test_events_whose_audit_fails_are_counted_as_withheld(engine, settings) -> None:
    from telekol.server.web.live import LiveBridge, Viewers

    # Made-up patient p1: the rooms are taken as addressed (live_sight is tested apart).
    bridge = LiveBridge(settings, FakeSocketIO(), engine,  # type: ignore[arg-type]
                        sight=lambda _engine, batch: batch)
    bridge.viewers = Viewers()
    bridge.viewers.add("tab-1", NURSE, ["org:muni-aalby"])
    withheld = value("telekol_live_events_withheld_total")
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE auditrecord RENAME TO auditrecord_gone")
    try:
        bridge.deliver([alert_event(5, ["muni-aalby"])])
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE auditrecord_gone RENAME TO auditrecord")
    assert value("telekol_live_events_withheld_total") - withheld == 1


# --- requests and the database pool ---------------------------------------------------------

def test_a_request_is_timed_under_its_url_rule_method_and_status_class(app) -> None:
    patient = karen(app)["id"]
    route = "/fhir/Patient/<patient_id>"
    before = value("telekol_http_request_seconds_count", route=route, method="GET",
                   status="2xx")
    headers = bearer(app, "patient.karen")
    assert app.test_client().get(f"/fhir/Patient/{patient}", headers=headers).status_code == 200
    app.test_client().get("/no/such/page")
    assert value("telekol_http_request_seconds_count", route=route, method="GET",
                 status="2xx") - before == 1
    assert value("telekol_http_request_seconds_count", route="unmatched", method="GET",
                 status="4xx") >= 1


def test_no_patient_id_cpr_number_name_or_device_appears_in_the_metrics(app, engine) -> None:
    patient = karen(app)
    device = next(d["device_id"] for d in app.config["fixture"]["devices"]
                  if d["patient"] == patient["id"])
    IngestService(engine, clock=lambda: NOW).ingest([delivery(device, reading("x1", 80))])
    client, headers = app.test_client(), bearer(app, "patient.karen")
    client.get(f"/fhir/Patient/{patient['id']}", headers=headers)
    client.get(f"/api/patients/{patient['id']}/care-plan", headers=headers)
    client.get(f"/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|{patient['cpr']}",
               headers=headers)
    client.get(f"/{patient['cpr']}")  # a CPR number typed into a path: no rule, "unmatched"
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/fhir/Patient/<patient_id>"' in text
    labels = " ".join(re.findall(r"\{[^}]*\}", text))
    for secret in (patient["id"], patient["cpr"], patient["cpr"].replace("-", ""),
                   patient["name"], device):
        assert secret not in text and secret not in labels


def test_the_pool_gauges_follow_checkouts_beyond_the_pool_size_included() -> None:
    engine = create_engine("sqlite://", poolclass=QueuePool, pool_size=1, max_overflow=1)
    metrics.watch_pool(engine, "test")

    def gauge(name: str) -> float:
        return value(f"telekol_db_pool_{name}", pool="test")

    assert gauge("size") == 1
    first = engine.connect()
    second = engine.connect()
    assert (gauge("checked_out"), gauge("overflow")) == (2, 1)
    second.close()
    assert (gauge("checked_out"), gauge("overflow")) == (1, 0)
    first.close()
    assert gauge("checked_out") == 0


def test_a_request_with_no_free_connection_counts_a_pool_timeout(engine, demo,
                                                                  settings) -> None:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url, http_db_connections=1),
                     live=False)
    app.config["fixture"] = demo
    headers = bearer(app, "nurse.aalby")
    timeouts = value("telekol_db_pool_timeouts_total")
    held = app.extensions["telekol"].engine.connect()  # another request holds the only one
    try:
        response = app.test_client().get("/api/patients", headers=headers)
    finally:
        held.close()
    assert response.status_code == 503
    assert value("telekol_db_pool_timeouts_total") - timeouts == 1
