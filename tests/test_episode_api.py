"""Episodes through every door: /api, the care-team and handover pages, and /fhir."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, col, select
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import AuditRecord, Episode
from telekol.server.web import create_app

from tests.test_web import csrf_token, log_in

POUL, KAREN, ELSE = "Poul Test Nielsen", "Karen Test Jensen", "Else Test Olsen"


class FakeBridge:
    """Collects the live events a request publishes."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Keep the events."""
        self.events.extend(batch)


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on a seeded database whose live events are collected."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.extensions["telekol"].bridge = FakeBridge()
    app.config.update(fixture=demo, engine=engine)
    return app


def pid(app, name: str) -> str:
    """Return the id of the demo patient called `name`."""
    return next(p["id"] for p in app.config["fixture"]["patients"] if p["name"] == name)


class Api:
    """A bearer-token client of /api and /fhir for one user."""

    def __init__(self, app, username: str) -> None:
        self.client = app.test_client()
        token = self.client.post("/api/auth/token", json={
            "username": username, "password": DEMO_PASSWORD}).get_json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str):  # type: ignore[no-untyped-def]
        """GET with the token."""
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, body: Any = None):  # type: ignore[no-untyped-def]
        """POST JSON with the token."""
        return self.client.post(path, json=body, headers=self.headers)


def events(app) -> list[dict[str, Any]]:
    """Return the live events published so far."""
    return app.extensions["telekol"].bridge.events


def ask_monitoring(app, to: str = "muni-boestrup"):  # type: ignore[no-untyped-def]
    """Ask, as nurse.aalby, to hand Poul's monitoring to `to`."""
    return Api(app, "nurse.aalby").post(f"/api/patients/{pid(app, POUL)}/handovers", {
        "responsibility": "monitoring", "to_organization": to, "reason": "Moves to Bøstrup"})


def test_the_episode_names_who_is_responsible_for_what(app) -> None:
    body = Api(app, "nurse.aalby").get(f"/api/patients/{pid(app, POUL)}/episode").get_json()
    episode = body["episode"]
    assert (episode["status"], episode["custodian"]["id"], episode["monitoring"]["id"],
            episode["treatment"]["id"]) == ("active", "muni-aalby", "muni-aalby", "gp-torvet")
    assert episode["treatment"]["name"] == "Lægerne ved Torvet"
    assert episode["started_at"].endswith("Z")
    assert {(m["organization"]["id"], m["role"], m["sees_data"]) for m in body["care_team"]} == {
        ("muni-aalby", "monitoring", True), ("gp-torvet", "treatment", True)}
    assert body["consents"]["sharing"]["granted"] is True
    assert body["pause"] is None and body["handovers"] == []
    assert body["may"] == {"consent": True, "pause": True, "hand_over": True}


@pytest.mark.parametrize("path", ["episode", "consents", "pauses"])
def test_an_organisation_off_the_team_gets_404(app, path: str) -> None:
    response = Api(app, "nurse.boestrup").get(f"/api/patients/{pid(app, POUL)}/{path}")
    assert response.status_code == 404 and "error" in response.get_json()


def test_a_handover_travels_from_request_to_acceptance(app) -> None:
    poul = pid(app, POUL)
    response = ask_monitoring(app)
    assert response.status_code == 201
    handover = response.get_json()
    assert (handover["status"], handover["from"]["id"], handover["to"]["id"]) == (
        "pending", "muni-aalby", "muni-boestrup")
    receiver = Api(app, "nurse.boestrup")
    assert receiver.get(f"/api/patients/{poul}/episode").status_code == 404
    assert receiver.get("/api/handovers/count").get_json() == {"incoming": 1}
    assert Api(app, "gp.torvet").get("/api/handovers/count").get_json() == {"incoming": 0}
    [incoming] = receiver.get("/api/handovers?direction=incoming").get_json()
    assert (incoming["patient_name"], incoming["birth_date"]) == (POUL, "1945-03-15")
    assert receiver.get("/api/handovers?direction=outgoing").get_json() == []
    accepted = receiver.post(f"/api/handovers/{handover['id']}/accept", {"note": "OK"})
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    episode = receiver.get(f"/api/patients/{poul}/episode").get_json()["episode"]
    assert (episode["monitoring"]["id"], episode["custodian"]["id"]) == (
        "muni-boestrup", "muni-aalby")
    [outgoing] = Api(app, "nurse.aalby").get(
        "/api/handovers?direction=outgoing&status=all").get_json()
    assert outgoing["status"] == "accepted" and outgoing["decided_by"] == "Sygeplejerske Lars Bro"
    assert [e["data"]["change"] for e in events(app)] == ["handover_requested",
                                                         "handover_accepted"]
    assert "org:muni-boestrup" in events(app)[0]["rooms"]


def test_a_second_pending_handover_is_a_conflict(app) -> None:
    assert ask_monitoring(app).status_code == 201
    response = ask_monitoring(app, to="hosp-lung")
    assert response.status_code == 409 and "pending" in response.get_json()["error"]


def test_a_handover_consent_would_not_let_the_receiver_see_is_refused(app) -> None:
    response = Api(app, "nurse.boestrup").post(f"/api/patients/{pid(app, ELSE)}/handovers", {
        "responsibility": "monitoring", "to_organization": "muni-aalby", "reason": "x"})
    assert response.status_code == 409
    assert "not consented to sharing" in response.get_json()["error"]


@pytest.mark.parametrize(("username", "path", "body", "status"), [
    ("doctor.hospital", "handovers", {"responsibility": "monitoring",
                                      "to_organization": "muni-boestrup", "reason": "x"}, 403),
    ("doctor.hospital", "consents", {"scope": "sharing", "granted": False}, 403),
    ("doctor.hospital", "pauses", {"starts_at": "2030-01-01T08:00:00+01:00",
                                   "ends_at": "2030-01-05T08:00:00+01:00", "reason": "x"}, 403),
    ("nurse.boestrup", "consents", {"scope": "sharing", "granted": False}, 404),
    ("nurse.aalby", "consents", {"scope": "sharing", "granted": "no"}, 400),
    ("nurse.aalby", "consents", {"scope": "gossip", "granted": True}, 400),
    ("nurse.aalby", "consents", ["not", "an", "object"], 400),
    ("nurse.aalby", "pauses", {"starts_at": "2030-01-01T08:00:00",
                               "ends_at": "2030-01-05T08:00:00+01:00", "reason": "x"}, 400),
    ("nurse.aalby", "pauses", {"starts_at": "2030-01-01T08:00:00+01:00",
                               "ends_at": "2030-04-05T08:00:00+01:00", "reason": "x"}, 400),
])
def test_writes_are_refused_with_the_right_status(app, username, path, body, status) -> None:
    response = Api(app, username).post(f"/api/patients/{pid(app, KAREN)}/{path}", body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]
    assert events(app) == []


def test_withdrawn_sharing_hides_the_patient_from_the_gp_at_once(app) -> None:
    karen, gp = pid(app, KAREN), Api(app, "gp.torvet")
    assert gp.get(f"/fhir/Patient/{karen}").status_code == 200
    response = Api(app, "nurse.aalby").post(f"/api/patients/{karen}/consents", {
        "scope": "sharing", "granted": False, "method": "verbal", "note": "By phone"})
    assert response.status_code == 201 and response.get_json()["granted"] is False
    assert gp.get(f"/fhir/Patient/{karen}").status_code == 404
    assert karen not in {p["id"] for p in gp.get("/api/patients").get_json()}
    assert gp.get(f"/api/patients/{karen}/episode").status_code == 404
    history = Api(app, "nurse.aalby").get(f"/api/patients/{karen}/consents").get_json()
    assert (history[0]["scope"], history[0]["granted"], history[0]["method"]) == (
        "sharing", False, "verbal")
    [event] = events(app)
    assert event["rooms"] == ["org:muni-aalby", f"patient:{karen}"]


def test_withdrawn_participation_finishes_the_episode(app) -> None:
    karen = pid(app, KAREN)
    response = Api(app, "gp.torvet").post(f"/api/patients/{karen}/consents", {
        "scope": "participation", "granted": False, "method": "written"})
    assert response.status_code == 201
    episode = Api(app, "gp.torvet").get(f"/api/patients/{karen}/episode").get_json()["episode"]
    assert episode["status"] == "finished" and episode["ended_at"]


def test_a_pause_is_created_listed_shown_and_cancelled(app) -> None:
    poul, nurse = pid(app, POUL), Api(app, "nurse.aalby")
    response = nurse.post(f"/api/patients/{poul}/pauses", {
        "starts_at": "2020-01-01T08:00:00+01:00", "ends_at": "2020-01-02T08:00:00+01:00",
        "reason": "Holiday"})
    assert response.status_code == 400 and "over" in response.get_json()["error"]
    created = nurse.post(f"/api/patients/{poul}/pauses", {
        "starts_at": "2020-01-01T08:00:00+01:00", "ends_at": "2099-01-01T08:00:00+01:00",
        "reason": "Admitted"})
    assert created.status_code == 400  # longer than 90 days
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    created = nurse.post(f"/api/patients/{poul}/pauses", {
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(), "reason": "Admitted"})
    assert created.status_code == 201, created.get_json()
    row = created.get_json()
    assert (row["status"], row["reason"]) == ("active", "Admitted")
    assert nurse.get(f"/api/patients/{poul}/episode").get_json()["pause"]["id"] == row["id"]
    assert [p["id"] for p in nurse.get(f"/api/patients/{poul}/pauses").get_json()] == [row["id"]]
    assert Api(app, "nurse.boestrup").post(f"/api/pauses/{row['id']}/cancel").status_code == 404
    cancelled = nurse.post(f"/api/pauses/{row['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["cancelled_at"]
    assert nurse.post(f"/api/pauses/{row['id']}/cancel").status_code == 409
    assert nurse.get(f"/api/patients/{poul}/episode").get_json()["pause"] is None
    assert [e["data"]["change"] for e in events(app)] == ["pause", "pause_cancelled"]


@pytest.mark.parametrize(("path", "resource"), [
    ("/api/patients/{id}/episode", "EpisodeOfCare?patient={id}"),
    ("/api/patients/{id}/consents", "Consent?patient={id}"),
    ("/api/patients/{id}/pauses", "MonitoringPause?patient={id}"),
    ("/patients/{id}/team", "CareTeam/{id}"),
    ("/fhir/EpisodeOfCare?patient={id}", "EpisodeOfCare?patient={id}"),
    ("/fhir/CareTeam/{id}", "CareTeam/{id}"),
])
def test_every_read_leaves_an_audit_record(app, path: str, resource: str) -> None:
    poul = pid(app, POUL)
    client = app.test_client()
    log_in(client, "nurse.aalby")
    assert client.get(path.format(id=poul)).status_code == 200
    with Session(app.config["engine"]) as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.patient_id == poul)
                            .order_by(col(AuditRecord.id))).all()
    assert resource.format(id=poul) in [r.resource for r in rows]


def test_the_handover_list_is_audited_for_the_receiver(app) -> None:
    ask_monitoring(app)
    Api(app, "nurse.boestrup").get("/api/handovers")
    with Session(app.config["engine"]) as session:
        row = session.exec(select(AuditRecord).where(
            AuditRecord.username == "nurse.boestrup", AuditRecord.patient_id == pid(app, POUL)
        )).one()
    assert (row.action, row.resource) == ("search", "Handover?direction=incoming")
    assert "birth date" in row.detail


# --- the pages --------------------------------------------------------------------------

def page_client(app, username: str):  # type: ignore[no-untyped-def]
    """Return a test client logged in through the form."""
    client = app.test_client()
    assert log_in(client, username).status_code == 302
    return client


def test_the_team_page_says_who_is_responsible_and_offers_the_forms(app) -> None:
    page = page_client(app, "nurse.aalby").get(f"/patients/{pid(app, POUL)}/team")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for text in ("Hjemmesygeplejen, Aalby Kommune", "Lægerne ved Torvet",
                 'id="handover-form"', 'id="consent-form"', 'id="pause-form"'):
        assert text in html


def test_a_specialist_sees_the_team_page_without_forms(app) -> None:
    html = page_client(app, "doctor.hospital").get(
        f"/patients/{pid(app, KAREN)}/team").get_data(as_text=True)
    assert "Lungemedicinsk Afdeling" in html
    for form in ('id="handover-form"', 'id="consent-form"', 'id="pause-form"'):
        assert form not in html


@pytest.mark.parametrize("username", ["nurse.boestrup", "admin", "patient.karen"])
def test_the_team_page_is_absent_for_those_who_may_not_see(app, username: str) -> None:
    assert page_client(app, username).get(
        f"/patients/{pid(app, POUL if username != 'patient.karen' else KAREN)}/team"
    ).status_code == 404


def test_the_forms_hand_over_and_accept(app) -> None:
    poul = pid(app, POUL)
    nurse = page_client(app, "nurse.aalby")
    token = csrf_token(nurse.get(f"/patients/{poul}/team").get_data(as_text=True))
    response = nurse.post(f"/patients/{poul}/team/handovers", data={
        "csrf_token": token, "responsibility": "monitoring", "to_organization": "muni-boestrup",
        "reason": "Moves"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/team")
    receiver = page_client(app, "nurse.boestrup")
    listing = receiver.get("/handovers").get_data(as_text=True)
    assert POUL in listing and "15.03.1945" in listing
    with Session(app.config["engine"]) as session:
        from telekol.server.models import Handover

        handover = session.exec(select(Handover)).one()
    token = csrf_token(listing)
    accepted = receiver.post(f"/handovers/{handover.id}/accept", data={"csrf_token": token})
    assert accepted.status_code == 302 and accepted.headers["Location"] == f"/patients/{poul}/team"
    page = receiver.get(f"/patients/{poul}/team").get_data(as_text=True)
    assert "Hjemmesygeplejen, Bøstrup Kommune" in page.split('data-part="monitoring"')[1][:200]


def test_a_refused_form_shows_the_reason_and_keeps_the_input(app) -> None:
    poul = pid(app, POUL)
    nurse = page_client(app, "nurse.aalby")
    token = csrf_token(nurse.get(f"/patients/{poul}/team").get_data(as_text=True))
    response = nurse.post(f"/patients/{poul}/team/pauses", data={
        "csrf_token": token, "starts_at": "2030-01-05T08:00", "ends_at": "2030-01-01T08:00",
        "reason": "Holiday in Spain"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="form-error"' in html and "Holiday in Spain" in html


def test_a_form_without_csrf_token_is_refused(app) -> None:
    response = page_client(app, "nurse.aalby").post(
        f"/patients/{pid(app, POUL)}/team/consent", data={"scope": "sharing", "granted": "false"})
    assert response.status_code == 400


def test_the_consent_form_records_and_redirects(app) -> None:
    karen = pid(app, KAREN)
    nurse = page_client(app, "nurse.aalby")
    token = csrf_token(nurse.get(f"/patients/{karen}/team").get_data(as_text=True))
    response = nurse.post(f"/patients/{karen}/team/consent", data={
        "csrf_token": token, "scope": "participation", "granted": "false", "method": "verbal",
        "note": "Stops"})
    assert response.status_code == 302
    with Session(app.config["engine"]) as session:
        episode = session.exec(select(Episode).where(Episode.patient_id == karen)).one()
    assert episode.status == "finished"
    assert "Stops" in nurse.get(f"/patients/{karen}/team").get_data(as_text=True)


# --- FHIR -------------------------------------------------------------------------------

def test_the_episode_of_care_names_custodian_and_responsibility(app) -> None:
    poul, gp = pid(app, POUL), Api(app, "gp.torvet")
    bundle = gp.get(f"/fhir/EpisodeOfCare?patient={poul}").get_json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    assert resource["managingOrganization"] == {"reference": "Organization/muni-aalby"}
    extensions = {e["url"].rsplit("/", 1)[1]: e["valueReference"]["reference"]
                  for e in resource["extension"]}
    assert extensions == {"ehealth-episodeofcare-caremanagerOrganization":
                          "Organization/muni-aalby",
                          "treatment-organization": "Organization/gp-torvet"}
    assert resource["team"] == [{"reference": f"CareTeam/{poul}"}]
    read = gp.get(f"/fhir/EpisodeOfCare/{resource['id']}")
    assert read.status_code == 200 and read.get_json()["id"] == resource["id"]


@pytest.mark.parametrize("path", ["EpisodeOfCare", "CareTeam", "Consent"])
def test_fhir_searches_show_nothing_of_an_invisible_patient(app, path: str) -> None:
    else_, gp = pid(app, ELSE), Api(app, "gp.skovvej")
    bundle = gp.get(f"/fhir/{path}?patient={else_}").get_json()
    assert bundle["total"] == 0 and "entry" not in bundle
    assert Api(app, "nurse.boestrup").get(f"/fhir/{path}?patient={else_}").get_json()["total"]


def test_fhir_reads_of_an_invisible_patient_answer_404(app) -> None:
    else_ = pid(app, ELSE)
    with Session(app.config["engine"]) as session:
        episode_id = session.exec(select(Episode.id).where(Episode.patient_id == else_)).one()
    gp = Api(app, "gp.skovvej")
    for path in (f"EpisodeOfCare/{episode_id}", f"CareTeam/{else_}"):
        response = gp.get(f"/fhir/{path}")
        assert response.status_code == 404
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_care_team_lists_organisations_with_roles_and_sight(app) -> None:
    else_ = pid(app, ELSE)
    team = Api(app, "nurse.boestrup").get(f"/fhir/CareTeam/{else_}").get_json()
    parts = {p["member"]["reference"]: ([r["coding"][0]["code"] for r in p["role"]],
                                        p["extension"][0]["valueBoolean"])
             for p in team["participant"]}
    assert parts == {"Organization/muni-boestrup": (["monitoring", "custodian"], True),
                     "Organization/gp-skovvej": (["treatment"], False)}
    assert team["status"] == "active" and team["reasonCode"][0]["coding"][0]["code"] == "DJ44"


def test_consents_are_fhir_consents_and_the_newest_is_active(app) -> None:
    karen, nurse = pid(app, KAREN), Api(app, "nurse.aalby")
    nurse.post(f"/api/patients/{karen}/consents", {"scope": "sharing", "granted": False})
    bundle = nurse.get(f"/fhir/Consent?patient={karen}&scope=patient-privacy").get_json()
    states = [(e["resource"]["status"], e["resource"]["provision"]["type"])
              for e in bundle["entry"]]
    assert states == [("inactive", "permit"), ("active", "deny")]
    participation = nurse.get(f"/fhir/Consent?patient={karen}&scope=treatment").get_json()
    coding = participation["entry"][0]["resource"]["category"][0]["coding"][0]
    assert coding["code"] == "PITEOC"
    one = participation["entry"][0]["resource"]["id"]
    assert nurse.get(f"/fhir/Consent/{one}").get_json()["id"] == one
    assert Api(app, "gp.skovvej").get(f"/fhir/Consent/{one}").status_code == 404


def test_the_capability_statement_lists_the_episode_resources(app) -> None:
    statement = app.test_client().get("/fhir/metadata").get_json()
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"EpisodeOfCare", "CareTeam", "Consent"} <= types
