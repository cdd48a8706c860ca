"""The clinician's page for one patient and the chart JSON, in-process on both backends."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import AuditRecord, MonitoringPause, User
from telekol.server.web import create_app

from tests.test_web import log_in

KAREN, ELSE = "Karen Test Jensen", "Else Test Olsen"


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on a seeded database where Karen has two weeks of readings."""
    send_readings(engine, device_for(demo, KAREN), [
        (13, {"spo2": 95, "pulse": 72}), (5, {"spo2": 90, "pulse": 80}),
        (1, {"spo2": 86, "bp_sys": 135, "bp_dia": 85}), (40, {"spo2": 97})])
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def patient_id(demo: dict[str, Any], name: str) -> str:
    """Return the id of the demo patient called `name`."""
    return next(p["id"] for p in demo["patients"] if p["name"] == name)


def device_for(demo: dict[str, Any], name: str) -> str:
    """Return the device at home with the demo patient called `name`."""
    wanted = patient_id(demo, name)
    return next(d["device_id"] for d in demo["devices"] if d["patient"] == wanted)


def send_readings(engine, device_id: str, rows: list[tuple[int, dict[str, float]]]) -> None:
    """Store readings taken `days ago` (from now) as the gateway would."""
    now = utcnow()
    payload = [{"msg_id": f"page-{uuid.uuid4().hex}",
                "taken_at": (now - timedelta(days=days)).isoformat(),
                "readings": [{"code": code, "value": value} for code, value in values.items()]}
               for days, values in rows]
    items = parse_measurements(json.dumps(payload).encode(), now)
    IngestService(engine).ingest([ParsedDelivery("t", device_id, now, items)])


def chart_data(page: str) -> dict[str, Any]:
    """Return the JSON the page hands to its chart script."""
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page,
                      re.S)
    assert match, "the page has no chart data"
    return json.loads(match.group(1))


def page_of(app, username: str, name: str, query: str = "") -> tuple[int, str]:
    """Log in as `username` and open the patient page of the demo patient `name`."""
    client = app.test_client()
    log_in(client, username)
    response = client.get(f"/patients/{patient_id(app.config['fixture'], name)}{query}")
    return response.status_code, response.get_data(as_text=True)


def test_a_care_team_nurse_sees_who_is_responsible_and_the_latest_readings(app) -> None:
    status, page = page_of(app, "nurse.aalby", KAREN)
    assert status == 200
    assert 'id="patient-name">Karen Test Jensen<' in page
    assert "010141-9996" in page
    assert re.search(r'data-part="monitoring">Hjemmesygeplejen, Aalby Kommune<', page)
    assert re.search(r'data-part="treatment">Lægerne ved Torvet<', page)
    assert re.search(r'data-part="custodian">Hjemmesygeplejen, Aalby Kommune<', page)
    latest = re.search(r'data-code="spo2" data-severity="(\w+)"', page)
    assert latest and latest.group(1) == "red"  # 86 % is below her red limit of 88 %
    assert 'id="paused"' not in page


def test_the_chart_holds_the_readings_of_the_chosen_period_with_the_limits(app) -> None:
    _, page = page_of(app, "nurse.aalby", KAREN)
    charts = {c["code"]: c for c in chart_data(page)["charts"]}
    assert [p["v"] for p in charts["spo2"]["points"]] == [95, 90, 86]  # 40 days ago is out
    assert [p["severity"] for p in charts["spo2"]["points"]] == ["green", "yellow", "red"]
    assert charts["spo2"]["lines"][0]["limits"]["red_low"] == 88
    assert charts["spo2"]["lines"][0]["limits"]["yellow_low"] == 92
    assert charts["bp"]["points"][0]["v2"] == 85
    _, wide = page_of(app, "nurse.aalby", KAREN, "?days=90")
    assert [p["v"] for p in chart_data(wide)["charts"][0]["points"]] == [97, 95, 90, 86]
    _, week = page_of(app, "nurse.aalby", KAREN, "?days=7")
    assert [p["v"] for p in chart_data(week)["charts"][0]["points"]] == [90, 86]


def test_every_reading_is_also_in_a_table(app) -> None:
    _, page = page_of(app, "nurse.aalby", KAREN)
    table = page[page.index('<table class="readings-table" data-code="spo2">'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<td>([^<]*%)</td>", table) == ["86 %", "90 %", "95 %"]


def test_open_alerts_and_the_tabs_are_on_the_page(app) -> None:
    _, page = page_of(app, "nurse.aalby", KAREN)
    assert re.search(r'<li class="alert-item red open" data-alert="\d+"', page)
    assert 'id="patient-status" data-status="red"' in page
    pid = patient_id(app.config["fixture"], KAREN)
    for path in ("", "/team", "/plan", "/messages", "/phone"):
        assert f'href="/patients/{pid}{path}"' in page


def test_a_pause_in_force_is_shown(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    with Session(app.config["engine"]) as session:
        now = datetime.now(UTC)
        session.add(MonitoringPause(patient_id=pid, starts_at=now - timedelta(hours=1),
                                    ends_at=now + timedelta(days=3), reason="Holiday in Spain"))
        session.commit()
    _, page = page_of(app, "nurse.aalby", KAREN)
    assert 'id="paused"' in page and "Holiday in Spain" in page


@pytest.mark.parametrize(("username", "name"), [
    ("nurse.boestrup", KAREN),  # not on her care team
    ("admin", KAREN),  # administrators see no clinical data
    ("gp.skovvej", ELSE),  # on the team, but Else has not consented to sharing
    ("nurse.aalby", "no such patient"),
])
def test_a_user_who_may_not_see_the_patient_gets_404(app, username: str, name: str) -> None:
    client = app.test_client()
    log_in(client, username)
    pid = next((p["id"] for p in app.config["fixture"]["patients"] if p["name"] == name),
               "00000000-0000-0000-0000-000000000000")
    assert client.get(f"/patients/{pid}").status_code == 404
    assert client.get(f"/api/patients/{pid}/observations?code=spo2").status_code == 404


def test_a_patient_going_to_a_patient_page_is_sent_to_her_own(app) -> None:
    client = app.test_client()
    log_in(client, "patient.karen")
    response = client.get(f"/patients/{patient_id(app.config['fixture'], KAREN)}")
    assert response.status_code == 302 and response.headers["Location"] == "/me"


def test_opening_the_page_leaves_an_audit_record(app) -> None:
    page_of(app, "nurse.aalby", KAREN)
    pid = patient_id(app.config["fixture"], KAREN)
    with Session(app.config["engine"]) as session:
        nurse = session.exec(select(User).where(User.username == "nurse.aalby")).one()
        rows = session.exec(select(AuditRecord).where(
            AuditRecord.patient_id == pid, AuditRecord.user_id == nurse.id)
            .order_by(col(AuditRecord.id))).all()
    assert [(r.action, r.resource, r.door, r.outcome) for r in rows][-1] == (
        "read", f"Patient/{pid}", "ui", "success")


def test_the_chart_json_lists_one_type_since_an_instant(app) -> None:
    client = app.test_client()
    log_in(client, "gp.torvet")
    pid = patient_id(app.config["fixture"], KAREN)
    since = (datetime.now(UTC) - timedelta(days=6)).isoformat().replace("+00:00", "Z")
    points = client.get(f"/api/patients/{pid}/observations?code=spo2&since={since}").get_json()
    assert [(p["v"], p["severity"]) for p in points] == [(90, "yellow"), (86, "red")]
    assert all(p["t"].endswith("Z") for p in points)
    default = client.get(f"/api/patients/{pid}/observations?code=pulse").get_json()
    assert [p["v"] for p in default] == [72, 80]


@pytest.mark.parametrize("query", ["", "?code=spo2&since=yesterday",
                                   "?code=spo2&since=2025-01-01T00:00"])
def test_the_chart_json_explains_a_bad_request(app, query: str) -> None:
    client = app.test_client()
    log_in(client)
    pid = patient_id(app.config["fixture"], KAREN)
    response = client.get(f"/api/patients/{pid}/observations{query}")
    assert response.status_code == 400 and response.get_json()["error"]


def test_the_dashboard_sends_a_patient_to_their_own_page(app) -> None:
    client = app.test_client()
    log_in(client, "patient.karen")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/me"
