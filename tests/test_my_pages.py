"""The patient's own pages (/me, /me/plan, /me/access-log), in-process on both backends."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from telekol.server import audit, care_plan
from telekol.server.alert_lifecycle import acknowledge_all
from telekol.server.care_plan_content import live_rows, parse_content
from telekol.server.episodes import current_episode
from telekol.server.models import Alert, AuditRecord, CarePlanVersion, User
from telekol.server.web import create_app

from tests.test_patient_page import KAREN, chart_data, device_for, patient_id, send_readings
from tests.test_web import log_in

PLAN: dict[str, Any] = {
    "schedules": [
        {"code": "spo2", "kind": "measurement", "times": ["08:00", "20:00"], "weekdays": [],
         "every_days": 1, "from_day": 0, "to_day": 13},
        {"code": "weight", "kind": "measurement", "times": ["07:30"], "weekdays": [0, 3],
         "every_days": 1, "from_day": 14, "to_day": None},
        {"code": "cat", "kind": "questionnaire", "times": ["10:00"], "weekdays": [],
         "every_days": 7, "from_day": 0, "to_day": None},
    ],
    "thresholds": {"spo2": {"red_low": 88, "yellow_low": 92, "yellow_high": None,
                            "red_high": None},
                   "pulse": {"red_low": None, "yellow_low": None, "yellow_high": 110,
                             "red_high": 130}},
    "relative": {"weight_gain_kg": 2},
    "self_care": {"green": "Keep walking every day.", "yellow": "Measure again in one hour.",
                  "red": "Call the home nurses now; call 112 if you cannot breathe."},
    "goals": ["Walk 15 minutes a day"],
    "notes": "Karen prefers phone calls after 10.",
}


@pytest.fixture
def app(engine, demo, settings):
    """Return an app where Karen has readings (the newest red) and a known care plan."""
    pid = patient_id(demo, KAREN)
    send_readings(engine, device_for(demo, KAREN), [(5, {"spo2": 93, "pulse": 70}),
                                                    (1, {"spo2": 86})])
    with Session(engine) as session:
        episode = current_episode(session, pid)
        assert episode is not None
        newest = session.exec(select(CarePlanVersion.version).where(
            CarePlanVersion.episode_id == episode.id)
            .order_by(col(CarePlanVersion.version).desc())).first() or 0
        version = CarePlanVersion(episode_id=episode.id, patient_id=pid, version=newest + 1,
                                  content=PLAN, changed_by_name="Praktiserende læge Ole Berg",
                                  changed_by_org="gp-torvet", summary="new limits")
        session.add(version)
        care_plan.sync_live(session, pid, live_rows(parse_content(PLAN)),
                            ["schedules", "thresholds", "relative"], version, {})
        session.commit()
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def signed_in(app, username: str = "patient.karen") -> Any:
    """Return a client logged in as `username`, reading English."""
    client = app.test_client()
    log_in(client, username)
    client.get("/language/en")
    return client


def text(client, path: str) -> str:
    """Return a page's HTML, asserting it answered 200."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_karen_sees_her_status_in_words_and_what_her_plan_says_for_red(app) -> None:
    page = text(signed_in(app), "/me")
    assert "Hello Karen Test" in page
    assert 'data-status="red"' in page
    assert "Your care team has been told about something red." in page
    assert "oxygen saturation 86 % is below the red limit 88 %" in page  # her words, not SpO2
    assert "Call the home nurses now; call 112 if you cannot breathe." in page
    assert "Measure again in one hour." not in page


def test_karen_stays_red_while_her_care_team_has_her_red_alert(app) -> None:
    send_readings(app.config["engine"], device_for(app.config["fixture"], KAREN),
                  [(0, {"spo2": 96})])
    page = text(signed_in(app), "/me")
    assert 'data-status="red"' in page  # as the nurse's work list shows her


def test_the_nurses_acknowledgement_and_message_reach_karen(app) -> None:
    engine = app.config["engine"]
    with Session(engine) as session:
        nurse = session.exec(select(User).where(User.username == "nurse.aalby")).one()
        acknowledge_all(session, nurse, patient_id(app.config["fixture"], KAREN), "ringer",
                        patient_message="Jeg ringer til dig inden kl. 12.")
        session.commit()
    page = text(signed_in(app), "/me")
    assert "Sygeplejerske Mette Holm has seen it" in page
    assert "Jeg ringer til dig inden kl. 12." in page


def test_karen_sees_her_readings_over_time_and_in_a_table(app) -> None:
    page = text(signed_in(app), "/me?days=7")
    charts = {c["code"]: c for c in chart_data(page)["charts"]}
    assert [p["v"] for p in charts["spo2"]["points"]] == [93, 86]
    assert [p["v"] for p in charts["pulse"]["points"]] == [70]
    assert charts["pulse"]["lines"][0]["limits"]["yellow_high"] == 110  # the plan's
    assert re.search(r'<table class="readings-table" data-code="spo2">.*?86 %.*?93 %', page, re.S)


def test_green_without_open_alerts_gives_no_advice(app) -> None:
    send_readings(app.config["engine"], device_for(app.config["fixture"], KAREN),
                  [(0, {"spo2": 96})])
    with Session(app.config["engine"]) as session:
        session.execute(update(Alert).values(status="resolved"))
        session.commit()
    page = text(signed_in(app), "/me")
    assert 'data-status="green"' in page and 'id="advice"' not in page


def test_the_start_page_links_to_both_questionnaires(app) -> None:
    page = text(signed_in(app), "/me")
    assert 'href="/questionnaire/cat"' in page and 'href="/questionnaire/copd-symptoms"' in page


def test_karen_reads_her_care_plan_in_plain_language(app) -> None:
    page = text(signed_in(app), "/me/plan")
    schedules = re.sub(r"\s+", " ", page[page.index('id="plan-schedules"'):])
    assert re.search(r"SpO2</td> <td>08:00, 20:00</td><td>every day</td>"
                     r"<td>from \d\d\.\d\d\.\d{4} to \d\d\.\d\d\.\d{4}</td>", schedules)
    assert re.search(r"Weight</td> <td>07:30</td><td>Monday, Thursday</td>"
                     r"<td>from \d\d\.\d\d\.\d{4}</td>", schedules)
    assert "CAT score (questionnaire)</td> <td>10:00</td><td>every 7 days</td><td>always" \
        in schedules
    assert "red below 88 %" in page and "yellow below 92 %" in page
    assert "yellow above 110 beats/min" in page  # the plan's limits are the ones in force
    assert "your weight rises by 2 kg or more" in page
    for words in (PLAN["self_care"].values(), PLAN["goals"], [PLAN["notes"]]):
        assert all(w in page for w in words)
    assert re.search(r"Version \d+, last changed [\d. :]+ by Praktiserende læge Ole Berg "
                     r"\(Lægerne ved Torvet\): [^<]*Pulse: red below 41 beats/min → none, "
                     r"yellow below 50 beats/min → none, yellow above 100 beats/min → "
                     r"110 beats/min", page)


def test_a_patient_without_a_plan_is_told_so(app) -> None:
    with Session(app.config["engine"]) as session:
        session.exec(delete(CarePlanVersion).where(  # type: ignore[call-overload]
            col(CarePlanVersion.patient_id) == patient_id(app.config["fixture"], KAREN)))
        session.commit()
    page = text(signed_in(app), "/me/plan")
    assert 'id="no-plan"' in page
    assert 'data-status="red"' in text(signed_in(app), "/me")  # no advice, but no error


@pytest.mark.parametrize("username", ["nurse.aalby", "gp.torvet", "admin"])
@pytest.mark.parametrize("path", ["/me", "/me/plan", "/me/access-log",
                                  "/api/me/observations?code=spo2"])
def test_only_patients_have_their_own_pages(app, username: str, path: str) -> None:
    assert signed_in(app, username).get(path).status_code == 404


def test_the_own_chart_json_lists_the_patients_readings(app) -> None:
    points = signed_in(app).get("/api/me/observations?code=spo2").get_json()
    assert [(p["v"], p["severity"]) for p in points] == [(93, "green"), (86, "red")]


@pytest.mark.parametrize(("path", "resource"), [
    ("/me", "Observation?patient={}"), ("/me/plan", "CarePlan/{plan}"),
    ("/me/access-log", "AuditEvent?patient={}"),
    ("/api/me/observations?code=spo2", "Observation?patient={}&code=spo2"),
])
def test_the_patient_looking_at_her_own_data_is_recorded(app, path: str, resource: str) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    signed_in(app).get(path)
    with Session(app.config["engine"]) as session:
        plan = session.exec(select(CarePlanVersion.id).where(CarePlanVersion.patient_id == pid)
                            .order_by(col(CarePlanVersion.id).desc())).first()
        newest = session.exec(select(AuditRecord).where(AuditRecord.patient_id == pid)
                              .order_by(col(AuditRecord.id).desc())).first()
    assert newest is not None
    assert (newest.username, newest.action, newest.resource) == (
        "patient.karen", "read", resource.format(pid, plan=plan))


def log_rows(page: str) -> list[dict[str, str]]:
    """Return the access log's rows as {who, organization, what}, top to bottom."""
    rows = re.findall(r'<tr data-entry="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
    found = []
    for entry, row in rows:
        cells = dict(re.findall(r'<td class="(who|organization|what)">(.*?)</td>', row, re.S))
        found.append({"id": entry, **{k: re.sub(r"\s+", " ", v).strip() for k, v in cells.items()}})
    return found


def test_the_access_log_names_who_looked_and_who_was_refused(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    signed_in(app, "nurse.aalby").get(f"/patients/{pid}")
    signed_in(app, "nurse.boestrup").get(f"/patients/{pid}")
    rows = log_rows(text(signed_in(app), "/me/access-log"))
    assert rows[0]["who"] == "Sygeplejerske Lars Bro"
    assert "(refused)" in rows[0]["what"]
    assert rows[1] == {"id": rows[1]["id"], "who": "Sygeplejerske Mette Holm",
                       "organization": "Hjemmesygeplejen, Aalby Kommune",
                       "what": "looked at your record"}
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)


def test_the_access_log_shows_her_own_visits_and_live_pushes_in_words(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    with Session(app.config["engine"]) as session:
        audit.append(session, [audit.Entry(audit.Actor(organization_id="gp-torvet"), pid,
                                           "push", "Observation/x", "live")])
        session.commit()
    client = signed_in(app)
    client.get("/me")
    rows = log_rows(text(client, "/me/access-log"))
    assert rows[0]["who"] == "You" and rows[0]["what"] == "looked at your measurements"
    assert rows[1]["what"] == "Lægerne ved Torvet was shown a live update"


def test_the_access_log_pages_back_to_older_entries(app, monkeypatch) -> None:
    from telekol.clinician_ui import my_views

    monkeypatch.setattr(my_views, "PAGE_SIZE", 2)
    client = signed_in(app)
    for _ in range(3):
        client.get("/me")
    first = text(client, "/me/access-log")
    older = re.search(r'href="/me/access-log\?before=(\d+)" id="older"', first)
    assert older and len(log_rows(first)) == 2
    second = log_rows(text(client, f"/me/access-log?before={older.group(1)}"))
    assert second and all(int(r["id"]) < int(older.group(1)) for r in second)


def test_a_reading_older_than_the_period_is_charted_only_in_a_longer_one(app) -> None:
    send_readings(app.config["engine"], device_for(app.config["fixture"], KAREN),
                  [(45, {"pulse": 99})])
    client = signed_in(app)

    def pulse(path: str) -> list[float]:
        charts = {c["code"]: c for c in chart_data(text(client, path))["charts"]}
        return [p["v"] for p in charts["pulse"]["points"]]
    assert pulse("/me") == [70]
    assert pulse("/me?days=90") == [99, 70]


@pytest.mark.parametrize(("username", "seeing", "hidden"), [
    # Karen consents to sharing: her whole care team sees her data.
    ("patient.karen", ["Hjemmesygeplejen, Aalby Kommune", "Lægerne ved Torvet",
                       "Lungemedicinsk Afdeling, Hospital Nord"], []),
    # Else does not: only Bøstrup, her data custodian, sees it, though her GP is on the team.
    ("patient.else", ["Hjemmesygeplejen, Bøstrup Kommune"], ["Lægehuset Skovvej"]),
])
def test_the_patient_sees_who_takes_care_of_her_and_who_can_see_her_data(
        app, username: str, seeing: list[str], hidden: list[str]) -> None:
    if username == "patient.else":
        _add_patient_user(app, username, "1406449990")
    page = text(signed_in(app, username), "/me/plan")
    team = page[page.index('id="my-team"'):]
    listed = re.findall(r"<li>([^<]+)</li>", team[team.index('id="seeing"'):])
    assert listed == sorted(seeing)
    assert all(name not in team[team.index('id="seeing"'):] for name in hidden)
    assert 'data-part="monitoring"' in team and 'data-part="custodian"' in team


def _add_patient_user(app, username: str, cpr: str) -> None:
    from sqlmodel import Session, select
    from telekol.server.models import Patient, User

    with Session(app.config["engine"]) as session:
        template = session.exec(select(User).where(User.username == "patient.karen")).one()
        patient = session.exec(select(Patient).where(Patient.cpr == cpr)).one()
        session.add(User(username=username, password_hash=template.password_hash,
                         display_name=patient.display, role="patient", patient_id=patient.id))
        session.commit()


def test_the_access_log_names_the_person_a_live_update_was_shown_to(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    nurse = audit.Actor(2, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby")
    with Session(app.config["engine"]) as session:
        audit.append(session, [audit.Entry(nurse, pid, "push", "observation/x", "live")])
        session.commit()
    rows = log_rows(text(signed_in(app), "/me/access-log"))
    assert rows[0]["who"] == "Sygeplejerske Mette Holm"
    assert rows[0]["what"] == "was shown a live update"
