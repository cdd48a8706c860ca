"""The readings-over-time block in-process on both backends: periods, lines and their limits,
the personal baseline, alert marks, plausible ranges and numbers in the page's language."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import Session, col, select
from telekol.server.db import utcnow
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Alert, PatientRuleSettings, Threshold
from telekol.server.web import create_app

from tests.test_patient_page import KAREN, chart_data, device_for, patient_id
from tests.test_web import log_in

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BP_LIMITS = {"bp_sys": {"yellow_low": 100.0, "yellow_high": 160.0, "red_high": 180.0},
             "bp_dia": {"yellow_low": 60.0, "yellow_high": 95.0, "red_high": 110.0}}


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on a seeded database (Karen has no readings yet)."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def send(app, rows: list[tuple[timedelta, dict[str, float]]]) -> None:
    """Store Karen's readings taken `ago` before now, as the gateway would."""
    now = utcnow()
    payload = [{"msg_id": f"block-{uuid.uuid4().hex}", "taken_at": (now - ago).isoformat(),
                "readings": [{"code": code, "value": value} for code, value in values.items()]}
               for ago, values in rows]
    items = parse_measurements(json.dumps(payload).encode(), now)
    device = device_for(app.config["fixture"], KAREN)
    IngestService(app.config["engine"]).ingest([ParsedDelivery("t", device, now, items)])


def page(app, query: str = "", lang: str = "en", username: str = "nurse.aalby") -> str:
    """Return Karen's page (the clinician's, or /me for Karen herself) in `lang`."""
    client = app.test_client()
    log_in(client, username)
    client.get(f"/language/{lang}")
    path = "/me" if username == "patient.karen" else \
        f"/patients/{patient_id(app.config['fixture'], KAREN)}"
    response = client.get(f"{path}{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def charts(html: str) -> dict[str, dict[str, Any]]:
    """Return the page's charts by code."""
    return {c["code"]: c for c in chart_data(html)["charts"]}


def karen(app) -> str:
    return patient_id(app.config["fixture"], KAREN)


@pytest.mark.parametrize(("query", "values"), [
    ("?days=1", [91]),
    ("?days=3", [93, 91]),
    ("?days=7", [95, 93, 91]),
    ("", [96, 95, 93, 91]),  # 30 days by default
    ("?days=90", [97, 96, 95, 93, 91]),
    ("?days=2", [96, 95, 93, 91]),  # not a period offered: the default
])
def test_the_period_is_24_or_72_hours_or_7_30_or_90_days(app, query, values):
    send(app, [(40 * DAY, {"spo2": 97}), (20 * DAY, {"spo2": 96}), (5 * DAY, {"spo2": 95}),
               (2 * DAY, {"spo2": 93}), (2 * HOUR, {"spo2": 91})])
    html = page(app, query)
    assert [p["v"] for p in charts(html)["spo2"]["points"]] == values
    links = re.findall(r'<a href="\?days=(\d+)#readings" data-days="\d+"\s*([^>]*)>([^<]+)</a>',
                       html)
    assert [(days, words) for days, _, words in links] == [
        ("1", "24 hours"), ("3", "72 hours"), ("7", "7 days"), ("30", "30 days"),
        ("90", "90 days")]
    current = [days for days, attributes, _ in links if 'aria-current="true"' in attributes]
    assert current == [query.removeprefix("?days=") if query not in ("", "?days=2") else "30"]


def test_the_chart_window_is_handed_to_the_script(app):
    send(app, [(2 * HOUR, {"spo2": 91})])
    data = chart_data(page(app, "?days=1"))
    since, until = (data[k] for k in ("since", "until"))
    assert since.endswith("Z") and until.endswith("Z")
    assert (until > since) and data["days"] == 1 and data["zone"] == "Europe/Copenhagen"


def test_blood_pressure_has_a_line_for_each_part_with_its_own_limits(app):
    with Session(app.config["engine"]) as session:
        session.execute(delete(Threshold).where(col(Threshold.patient_id) == karen(app),
                                                col(Threshold.measurement).in_(BP_LIMITS)))
        for code, limits in BP_LIMITS.items():
            session.add(Threshold(patient_id=karen(app), measurement=code, set_by="test",
                                  **limits))
        session.commit()
    send(app, [(HOUR, {"bp_sys": 150, "bp_dia": 97})])
    html = page(app)
    lines = charts(html)["bp"]["lines"]
    assert [(ln["code"], ln["key"], ln["label"]) for ln in lines] == [
        ("bp_sys", "v", "Systolic"), ("bp_dia", "v2", "Diastolic")]
    assert [ln["limits"]["yellow_high"] for ln in lines] == [160, 95]
    assert [ln["plausible"] for ln in lines] == [[40, 300], [20, 200]]
    assert re.search(r'data-line="bp_dia">Diastolic\. Limits:\s*<span class="band yellow">'
                     r"yellow below 60 mmHg", html)
    assert "Yellow alert: Diastolic: beyond a limit" in html  # 97 is above 95


def test_spo2_has_the_baseline_its_rule_uses_with_the_patients_own_window(app):
    send(app, [(6 * DAY, {"spo2": 95}), (5 * DAY, {"spo2": 94}), (4 * DAY, {"spo2": 96}),
               (3 * DAY, {"spo2": 95}), (2 * DAY, {"spo2": 97}), (HOUR, {"spo2": 93})])
    spo2 = charts(page(app, "?days=7"))["spo2"]
    # The default needs five earlier readings: only the newest has a baseline.
    assert [p.get("b") for p in spo2["points"]] == [None, None, None, None, None, 95.4]
    assert spo2["baseline"] == "Mean of the previous 7 days"
    with Session(app.config["engine"]) as session:
        session.add(PatientRuleSettings(patient_id=karen(app), set_by="test", overrides={
            "baseline_days": 3, "baseline_min_readings": 2}))
        session.commit()
    html = page(app, "?days=7")
    spo2 = charts(html)["spo2"]
    # 94 taken exactly 3 days before 97 is inside 97's window, as in the rule.
    assert [p.get("b") for p in spo2["points"]] == [None, None, 94.5, 95.0, 95.0, 96.0]
    assert spo2["baseline"] == "Mean of the previous 3 days"
    assert '<th scope="col" class="baseline">Mean of the previous 3 days</th>' in html
    assert '<td class="baseline">96.0 %</td>' in html


def test_weight_has_the_lowest_weight_of_the_weight_gain_rule(app):
    send(app, [(2 * DAY, {"weight": 72.4}), (DAY, {"weight": 72.1}), (HOUR, {"weight": 73.6})])
    weight = charts(page(app, "?days=7"))["weight"]
    assert [p.get("b") for p in weight["points"]] == [None, 72.4, 72.1]
    assert weight["baseline"] == "Lowest in the previous 3 days"


def test_a_type_no_relative_rule_uses_has_no_baseline(app):
    send(app, [(d * DAY, {"pulse": 70 + d}) for d in range(6)])
    pulse = charts(page(app, "?days=7"))["pulse"]
    assert pulse["baseline"] is None and all("b" not in p for p in pulse["points"])


def test_alerts_mark_the_chart_of_the_reading_they_concern(app):
    send(app, [(3 * HOUR, {"spo2": 95, "pulse": 72}), (2 * HOUR, {"spo2": 85, "pulse": 75})])
    with Session(app.config["engine"]) as session:
        alert = session.exec(select(Alert).where(Alert.patient_id == karen(app),
                                                 Alert.rule == "threshold:spo2")).one()
        alert.acknowledged_at, alert.status = utcnow(), "acknowledged"
        session.add(alert)
        session.commit()
        alert_id = alert.id
    html = page(app, "?days=1")
    found = charts(html)
    (mark,) = [a for a in found["spo2"]["alerts"] if a["id"] == alert_id]
    assert (mark["line"], mark["severity"], mark["text"]) == (
        "spo2", "red", "Red alert: beyond a limit")
    assert mark["raised"] and mark["acknowledged"] and mark["acknowledged"] > mark["raised"]
    assert found["pulse"]["alerts"] == []
    item = re.search(rf'<li data-alert="{alert_id}" data-severity="red">(.*?)</li>', html, re.S)
    assert item and re.search(r"Red alert: beyond a limit\. Raised [\d.]+ [\d:]+; "
                              r"acknowledged [\d.]+ [\d:]+\.", " ".join(item.group(1).split()))


def test_an_alert_raised_before_the_period_shows_only_its_acknowledgement(app):
    send(app, [(2 * HOUR, {"spo2": 85})])
    with Session(app.config["engine"]) as session:
        alert = session.exec(select(Alert).where(Alert.patient_id == karen(app))
                             .order_by(col(Alert.id))).first()
        assert alert is not None
        alert.created_at, alert.acknowledged_at = utcnow() - 5 * DAY, utcnow() - HOUR
        session.add(alert)
        session.commit()
    (mark, *_) = charts(page(app, "?days=1"))["spo2"]["alerts"]
    assert mark["raised"] is None and mark["acknowledged"]
    assert "Raised before the period; acknowledged" in page(app, "?days=1")


def test_scores_and_readings_carry_the_range_their_axis_stays_within(app):
    send(app, [(HOUR, {"spo2": 93, "fev1": 1.1, "weight": 72.0, "pef": 250})])
    lines = {code: chart["lines"][0]["plausible"] for code, chart in charts(page(app)).items()}
    assert lines == {"spo2": [50, 100], "fev1": [0.1, 8], "weight": [20, 350],
                     "pef": [20, 1000]}


@pytest.mark.parametrize(("lang", "fev1", "limit"), [
    ("da", "1,10 L", "rød under 0,80 L"),
    ("en", "1.10 L", "red below 0.80 L"),
])
def test_numbers_have_a_decimal_comma_in_danish(app, lang, fev1, limit):
    with Session(app.config["engine"]) as session:
        session.add(Threshold(patient_id=karen(app), measurement="fev1", set_by="test",
                              red_low=0.8, yellow_low=1.0))
        session.commit()
    send(app, [(HOUR, {"fev1": 1.1})])
    for username in ("nurse.aalby", "patient.karen"):
        html = page(app, lang=lang, username=username)
        table = html[html.index('<table class="readings-table" data-code="fev1">'):]
        assert f"<td>{fev1}</td>" in table[:table.index("</table>")]
        assert limit in html
