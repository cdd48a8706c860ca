"""The patient's own pages (/me, /me/plan, /me/access-log), in-process on both backends."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from telekol.server.alerts.lifecycle import acknowledge_all
from telekol.server.audit import log as audit
from telekol.server.care import plan as care_plan
from telekol.server.care.episodes import current_episode
from telekol.server.care.plan_content import live_rows, parse_content
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
    assert "Oxygen saturation 86 % is below the red limit 88 %" in page  # her words, not SpO2
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


def schedule_cards(page: str) -> dict[str, dict[str, str]]:
    """Return the plan's schedule cards as {title: {times, days, period-words}}."""
    part = page[page.index('id="plan-schedules"'):]
    part = part[:part.index("</ul>")]
    cards = {}
    for card in re.findall(r"<li data-code=[^>]*>(.*?)</li>", part, re.S):
        title = re.sub(r"\s+", " ", re.search(r'<span class="title">(.*?)</span>', card,
                                                re.S).group(1)).strip()
        cards[title] = dict(re.findall(r'<dd class="([a-z-]+)">(.*?)</dd>', card, re.S))
    return cards


def test_karen_reads_her_care_plan_in_plain_language(app) -> None:
    page = text(signed_in(app), "/me/plan")
    cards = schedule_cards(page)
    assert cards["Oxygen saturation (SpO2)"]["times"] == "08:00, 20:00"
    assert cards["Oxygen saturation (SpO2)"]["days"] == "every day"
    assert re.fullmatch(r"from \d\d\.\d\d\.\d{4} to \d\d\.\d\d\.\d{4}",
                        cards["Oxygen saturation (SpO2)"]["period-words"])
    assert cards["Weight"]["days"] == "Monday, Thursday"
    assert re.fullmatch(r"from \d\d\.\d\d\.\d{4}", cards["Weight"]["period-words"])
    assert cards["CAT score (questionnaire)"] == {"times": "10:00", "days": "every 7 days",
                                                  "period-words": "always"}
    assert "<table" not in page  # cards, not a table wider than a phone
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


def log_groups(page: str) -> list[dict[str, Any]]:
    """Return the access log's groups, top to bottom: day, who, organisation, lines."""
    found = []
    days = re.findall(r'<section class="access-day" data-day="([\d-]+)">(.*?)</section>', page,
                      re.S)
    for day, people in days:
        for person in re.findall(r'<li class="access-person[^"]*">(.*?)</ul>\s*<p class="when">',
                                 people, re.S):
            who = re.search(r'<p class="who"><strong>(.*?)</strong>', person, re.S)
            org = re.search(r'<span class="organization">(.*?)</span>', person, re.S)
            lines = re.findall(r"<li[^>]*>(.*?)</li>", person.split('<ul class="what">')[1], re.S)
            found.append({"day": day, "who": who.group(1) if who else "",
                          "organization": org.group(1) if org else "",
                          "lines": [re.sub(r"\s+", " ", line).strip() for line in lines]})
    return found


def test_the_access_log_names_who_looked_and_who_was_refused(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    signed_in(app, "nurse.aalby").get(f"/patients/{pid}")
    signed_in(app, "nurse.boestrup").get(f"/patients/{pid}")
    groups = log_groups(text(signed_in(app), "/me/access-log"))
    assert groups[0]["who"] == "Sygeplejerske Lars Bro"
    assert groups[0]["lines"] == ["tried to see your data but was not allowed once"]
    assert groups[1] == {"day": groups[0]["day"], "who": "Sygeplejerske Mette Holm",
                         "organization": "Hjemmesygeplejen, Aalby Kommune",
                         "lines": ["looked at your record once"]}


def test_looks_by_one_person_on_one_day_are_counted_in_one_line(app) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    nurse = signed_in(app, "nurse.aalby")
    for _ in range(3):
        nurse.get(f"/patients/{pid}")
    [mette] = [g for g in log_groups(text(signed_in(app), "/me/access-log"))
               if g["who"] == "Sygeplejerske Mette Holm"]
    assert mette["lines"] == ["looked at your record 3 times"]


@pytest.mark.parametrize(("actor", "action", "resource"), [
    (audit.Actor(organization_id="gp-torvet"), "push", "observation/x"),
    (audit.Actor(2, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby"), "push",
     "observation/x"),
    (audit.Actor(2, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby"),
     "subscribe", "rooms:org:muni-aalby"),
])
def test_live_updates_are_not_listed_but_stay_in_the_audit_log(app, actor, action: str,
                                                                resource: str) -> None:
    pid = patient_id(app.config["fixture"], KAREN)
    with Session(app.config["engine"]) as session:
        audit.append(session, [audit.Entry(actor, pid, action, resource, "live")] * 50)
        session.commit()
    client = signed_in(app)
    client.get("/me")
    page = text(client, "/me/access-log")
    assert [(g["who"], g["lines"]) for g in log_groups(page)] == [
        ("You", ["looked at your measurements once"])]
    assert "was shown a live update" not in page
    with Session(app.config["engine"]) as session:
        kept = session.exec(select(AuditRecord).where(AuditRecord.patient_id == pid,
                                                      AuditRecord.action == action)).all()
    assert len(kept) == 50


def test_the_access_log_pages_back_to_older_entries(app, monkeypatch) -> None:
    from telekol.clinician_ui import access_log_views

    monkeypatch.setattr(access_log_views, "PAGE_SIZE", 2)
    client = signed_in(app)
    for _ in range(3):
        client.get("/me")
    first = text(client, "/me/access-log")
    older = re.search(r'href="/me/access-log\?before=(\d+)" id="older"', first)
    assert older and log_groups(first)[0]["lines"] == ["looked at your measurements 2 times"]
    second = text(client, f"/me/access-log?before={older.group(1)}")
    assert [g["lines"] for g in log_groups(second)] == [["looked at your measurements once"]]
    assert 'id="older"' not in second


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


def tel_links(page: str) -> list[tuple[str, str]]:
    """Return the page's tel: links as (href, the number shown)."""
    links = re.findall(r'<a [^>]*href="(tel:[^"]+)"[^>]*>(.*?)</a>', page, re.S)
    return [(href, number.group(1) if (number := re.search(
        r'<span class="number">(.*?)</span>', inner)) else "") for href, inner in links]


def test_red_advice_puts_the_monitoring_nurses_number_first(app) -> None:
    page = text(signed_in(app), "/me")
    advice = page[page.index('id="advice"'):page.index('id="advice"') + 2000]
    assert tel_links(advice)[:2] == [("tel:+4572000021", "72 00 00 21"), ("tel:112", "")]
    assert "Call Hjemmesygeplejen, Aalby Kommune" in advice


@pytest.mark.parametrize("path", ["/me", "/me/plan"])
def test_the_care_team_is_listed_with_a_number_to_call(app, path: str) -> None:
    page = text(signed_in(app), path)
    team = page[page.index('class="contacts"'):]
    team = team[:team.index("</ul>")]
    assert re.findall(r'<li data-part="(\w+)">', team) == ["monitoring", "treatment"]
    assert tel_links(team) == [("tel:+4572000021", "72 00 00 21"),
                               ("tel:+4586000031", "86 00 00 31")]
    assert "Hjemmesygeplejen, Aalby Kommune" in team and "Lægerne ved Torvet" in team


def test_an_organisation_without_a_number_says_so_and_offers_no_link(app) -> None:
    from telekol.server.accounts.admin import set_organization_phone

    with Session(app.config["engine"]) as session:
        set_organization_phone(session, "gp-torvet", None)
        session.commit()
    page = text(signed_in(app), "/me/plan")
    team = page[page.index('class="contacts"'):]
    assert "No phone number is registered yet." in team[:team.index("</ul>")]
    assert "tel:+4586000031" not in page


def test_the_message_page_offers_a_call_for_what_is_urgent(app) -> None:
    page = text(signed_in(app), "/me/messages")
    assert ("tel:+4572000021", "72 00 00 21") in tel_links(page)


def test_the_plans_red_advice_carries_the_number_and_112(app) -> None:
    page = text(signed_in(app), "/me/plan")
    red = re.search(r'<li class="red" data-colour="red">(.*?)</li>', page, re.S)
    assert red is not None and PLAN["self_care"]["red"] in red.group(1)
    assert tel_links(red.group(1)) == [("tel:+4572000021", "72 00 00 21"), ("tel:112", "")]
