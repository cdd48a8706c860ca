"""Messages on the JSON door and the message pages, in-process with Flask's test client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import Session, col, select
from telekol.server.care import access
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import AuditRecord, Message
from telekol.server.web import create_app

KAREN, POUL, ELSE = "0101419996", "1503459995", "1406449990"


class FakeBridge:
    """Collect what the views publish instead of sending it to the broker."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Keep the events."""
        self.events.extend(batch)


@pytest.fixture
def app(engine, demo, settings: Settings):
    """Return an app on a seeded database with a fake live bridge."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config["fixture"] = demo
    app.extensions["telekol"].bridge = FakeBridge()
    return app


def pid(app, cpr: str) -> str:
    """Return a demo patient's id by CPR."""
    return next(p["id"] for p in app.config["fixture"]["patients"] if p["cpr"] == cpr)


def csrf_token(html: str) -> str:
    """Return the CSRF token of a rendered page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Browser:
    """A logged-in test client that sends its CSRF token on JSON posts."""

    def __init__(self, app, username: str) -> None:
        self.client = app.test_client()
        token = csrf_token(self.client.get("/login").get_data(as_text=True))
        response = self.client.post("/login", data={
            "username": username, "password": DEMO_PASSWORD, "csrf_token": token})
        assert response.status_code == 302, username
        self.token = token

    def get(self, path: str):  # type: ignore[no-untyped-def]
        """GET a path."""
        return self.client.get(path)

    def post(self, path: str, body: Any):  # type: ignore[no-untyped-def]
        """POST JSON with the CSRF header."""
        return self.client.post(path, json=body, headers={"X-CSRFToken": self.token})


def test_a_care_team_member_posts_and_reads_the_team_thread(app) -> None:
    nurse, poul = Browser(app, "nurse.aalby"), pid(app, POUL)
    response = nurse.post(f"/api/patients/{poul}/messages",
                          {"channel": "team", "body": "  Poul skal ses i dag. "})
    assert response.status_code == 201
    posted = response.get_json()
    assert posted["body"] == "Poul skal ses i dag." and posted["channel"] == "team"
    assert posted["author"]["name"] == "Sygeplejerske Mette Holm"
    assert posted["author"]["organization"]["name"] == "Hjemmesygeplejen, Aalby Kommune"
    page = Browser(app, "gp.torvet").get(f"/api/patients/{poul}/messages?channel=team")
    assert page.status_code == 200
    assert page.get_json()["messages"][-1]["id"] == posted["id"]


@pytest.mark.parametrize(("username", "cpr", "channel", "status"), [
    ("nurse.aalby", KAREN, "team", 201),
    ("gp.torvet", KAREN, "patient", 201),
    ("patient.karen", KAREN, "patient", 201),
    ("patient.karen", KAREN, "team", 404),
    ("patient.karen", POUL, "patient", 404),
    ("nurse.boestrup", KAREN, "team", 404),
    ("gp.skovvej", ELSE, "patient", 404),
    ("admin", KAREN, "team", 404),
])
def test_posting_answers_404_to_anyone_who_may_not_see_the_thread(
        app, username, cpr, channel, status) -> None:
    response = Browser(app, username).post(f"/api/patients/{pid(app, cpr)}/messages",
                                           {"channel": channel, "body": "Hej"})
    assert response.status_code == status, response.get_json()
    listing = Browser(app, username).get(
        f"/api/patients/{pid(app, cpr)}/messages?channel={channel}")
    assert listing.status_code == (200 if status == 201 else 404)


def test_one_who_sees_the_patient_but_may_not_write_gets_403(app, monkeypatch) -> None:
    monkeypatch.setitem(access.ACTIONS, "message_patient", (("doctor", "gp"), "team"))
    response = Browser(app, "nurse.aalby").post(f"/api/patients/{pid(app, KAREN)}/messages",
                                                {"channel": "patient", "body": "Hej"})
    assert response.status_code == 403 and "error" in response.get_json()


@pytest.mark.parametrize(("body", "wanted"), [
    ({"channel": "team", "body": "   "}, "empty"),
    ({"channel": "team", "body": "x" * 4001}, "4000"),
    ({"channel": "team"}, "string"),
    ({"channel": "chat", "body": "Hej"}, "channel"),
    (["not", "an", "object"], "JSON object"),
])
def test_a_malformed_message_gets_a_clear_400(app, body, wanted) -> None:
    response = Browser(app, "nurse.aalby").post(f"/api/patients/{pid(app, POUL)}/messages", body)
    assert response.status_code == 400 and wanted in response.get_json()["error"]


@pytest.mark.parametrize("query", ["after=x", "limit=-1", "before=1.5"])
def test_a_malformed_page_request_gets_a_clear_400(app, query) -> None:
    response = Browser(app, "nurse.aalby").get(
        f"/api/patients/{pid(app, POUL)}/messages?channel=team&{query}")
    assert response.status_code == 400


def test_a_cookie_post_without_the_csrf_token_is_refused_but_a_bearer_post_works(app) -> None:
    nurse, poul = Browser(app, "nurse.aalby"), pid(app, POUL)
    refused = nurse.client.post(f"/api/patients/{poul}/messages",
                                json={"channel": "team", "body": "Hej"})
    assert refused.status_code == 400
    token = app.test_client().post("/api/auth/token", json={
        "username": "gp.torvet", "password": DEMO_PASSWORD}).get_json()["access_token"]
    done = app.test_client().post(f"/api/patients/{poul}/messages",
                                  json={"channel": "team", "body": "Hej"},
                                  headers={"Authorization": f"Bearer {token}"})
    assert done.status_code == 201


def test_unread_counts_rise_with_others_messages_and_fall_when_read(app) -> None:
    gp, nurse, karen = Browser(app, "gp.torvet"), Browser(app, "nurse.aalby"), pid(app, KAREN)
    before = gp.get("/api/messages/unread").get_json()
    posted = nurse.post(f"/api/patients/{karen}/messages",
                        {"channel": "team", "body": "Til lægen"}).get_json()
    after = gp.get("/api/messages/unread").get_json()
    assert after["total"] == before["total"] + 1
    row = next(r for r in after["patients"] if r["patient"]["id"] == karen)
    assert row["patient"]["display"] == "Karen Test Jensen" and row["unread"]["team"] >= 1
    assert gp.get("/api/messages/unread-count").get_json() == {"total": after["total"]}
    read = gp.post(f"/api/patients/{karen}/messages/read",
                   {"channel": "team", "up_to": posted["id"]})
    assert read.status_code == 200
    assert read.get_json() == {"last_read_id": posted["id"], "total": before["total"]}
    assert nurse.get("/api/messages/unread").get_json()["total"] == nurse.get(
        "/api/messages/unread-count").get_json()["total"]


@pytest.mark.parametrize("up_to", [None, "7", -1, True])
def test_marking_read_needs_a_message_id(app, up_to) -> None:
    response = Browser(app, "gp.torvet").post(f"/api/patients/{pid(app, KAREN)}/messages/read",
                                              {"channel": "team", "up_to": up_to})
    assert response.status_code == 400


def test_the_patient_has_her_own_thread_and_never_learns_of_the_team_thread(app) -> None:
    karen_id = pid(app, KAREN)
    Browser(app, "gp.torvet").post(f"/api/patients/{karen_id}/messages",
                                   {"channel": "team", "body": "Kun for teamet"})
    nurse_reply = Browser(app, "nurse.aalby").post(f"/api/patients/{karen_id}/messages", {
        "channel": "patient", "body": "Hej Karen"}).get_json()
    karen = Browser(app, "patient.karen")
    thread = karen.get("/api/me/messages").get_json()
    assert thread["channel"] == "patient"
    assert nurse_reply["id"] in [m["id"] for m in thread["messages"]]
    assert "Kun for teamet" not in karen.get("/api/me/messages?limit=500").get_data(as_text=True)
    unread = karen.get("/api/messages/unread").get_json()
    assert all(set(r["unread"]) == {"patient"} for r in unread["patients"])
    assert karen.get("/api/me/messages/unread").get_json()["total"] == unread["total"] >= 1
    posted = karen.post("/api/me/messages", {"body": "Tak!"})
    assert posted.status_code == 201 and posted.get_json()["author"]["organization"] is None
    marked = karen.post("/api/me/messages/read", {"up_to": posted.get_json()["id"]})
    assert marked.get_json()["total"] == 0


@pytest.mark.parametrize("path", ["/api/me/messages", "/api/me/messages/unread"])
def test_a_clinician_has_no_own_thread(app, path) -> None:
    assert Browser(app, "nurse.aalby").get(path).status_code == 404


@pytest.mark.parametrize(("channel", "patient_room"), [("team", False), ("patient", True)])
def test_a_post_is_published_live_to_the_rooms_that_may_read_it(app, channel, patient_room) -> None:
    karen = pid(app, KAREN)
    posted = Browser(app, "gp.torvet").post(f"/api/patients/{karen}/messages",
                                            {"channel": channel, "body": "Live"}).get_json()
    event = app.extensions["telekol"].bridge.events[-1]
    assert event["type"] == "message" and event["data"] == posted
    assert ("patient:" + karen in event["rooms"]) is patient_room
    assert {"org:muni-aalby", "org:gp-torvet", "org:hosp-lung"} <= set(event["rooms"])


def test_every_message_view_leaves_an_audit_record(app, engine) -> None:
    karen = pid(app, KAREN)
    nurse = Browser(app, "nurse.aalby")
    since = _last_audit_id(engine)
    posted = nurse.post(f"/api/patients/{karen}/messages", {"channel": "team", "body": "Hej"})
    nurse.get(f"/api/patients/{karen}/messages?channel=team")
    nurse.post(f"/api/patients/{karen}/messages/read",
               {"channel": "team", "up_to": posted.get_json()["id"]})
    nurse.get("/api/messages/unread")
    nurse.get(f"/patients/{karen}/messages")
    nurse.get("/messages")
    with Session(engine) as session:
        rows = session.exec(select(AuditRecord).where(col(AuditRecord.id) > since)
                            .where(AuditRecord.username == "nurse.aalby")).all()
    mine = {(r.action, r.resource.split("?")[0], r.door) for r in rows if r.patient_id == karen}
    assert {("create", "Message", "api"), ("read", "Message", "api"),
            ("update", "MessageReadMark", "api"), ("read", "Message", "ui"),
            ("search", "Message", "ui")} <= mine


# ---- the pages ----


def test_the_inbox_lists_patients_with_unread_counts_newest_first(app) -> None:
    karen, poul = pid(app, KAREN), pid(app, POUL)
    Browser(app, "gp.torvet").post(f"/api/patients/{karen}/messages",
                                   {"channel": "team", "body": "Nyeste besked"})
    page = Browser(app, "nurse.aalby").get("/messages").get_data(as_text=True)
    rows = re.findall(r'<tr data-patient="([^"]+)">', page)
    assert rows[:2] == [karen, poul]
    assert "Nyeste besked" in page and 'id="nav-unread"' in page


def test_opening_a_patients_messages_shows_both_threads_and_marks_them_read(app) -> None:
    nurse, poul = Browser(app, "nurse.aalby"), pid(app, POUL)
    assert nurse.get("/api/messages/unread-count").get_json()["total"] > 0
    page = nurse.get(f"/patients/{poul}/messages").get_data(as_text=True)
    assert 'id="thread-team"' in page and 'id="thread-patient"' in page
    assert "Praktiserende læge Ole Berg · Lægerne ved Torvet" in page
    unread = nurse.get("/api/messages/unread").get_json()
    assert poul not in [r["patient"]["id"] for r in unread["patients"]]


def test_the_send_form_posts_and_redirects_to_the_thread(app) -> None:
    nurse, poul = Browser(app, "nurse.aalby"), pid(app, POUL)
    page = nurse.get(f"/patients/{poul}/messages").get_data(as_text=True)
    response = nurse.client.post(f"/patients/{poul}/messages", data={
        "csrf_token": csrf_token(page), "channel": "patient", "body": "Hej Poul"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/patients/{poul}/messages#thread-patient")
    assert "Hej Poul" in nurse.get(f"/patients/{poul}/messages").get_data(as_text=True)
    assert app.extensions["telekol"].bridge.events[-1]["data"]["body"] == "Hej Poul"


def test_an_empty_form_message_shows_the_error_and_stores_nothing(app, engine) -> None:
    nurse, poul = Browser(app, "nurse.aalby"), pid(app, POUL)
    page = nurse.get(f"/patients/{poul}/messages").get_data(as_text=True)
    count = _messages(engine)
    response = nurse.client.post(f"/patients/{poul}/messages", data={
        "csrf_token": csrf_token(page), "channel": "team", "body": "   "})
    assert response.status_code == 400 and 'role="alert"' in response.get_data(as_text=True)
    assert _messages(engine) == count


def test_the_form_refuses_a_post_without_the_csrf_token(app, engine) -> None:
    count = _messages(engine)
    response = Browser(app, "nurse.aalby").client.post(
        f"/patients/{pid(app, POUL)}/messages", data={"channel": "team", "body": "Hej"})
    assert response.status_code == 400 and _messages(engine) == count


def test_the_patient_page_shows_her_thread_and_not_the_team_thread(app) -> None:
    karen_id = pid(app, KAREN)
    Browser(app, "gp.torvet").post(f"/api/patients/{karen_id}/messages",
                                   {"channel": "team", "body": "Hemmelig teamnote"})
    karen = Browser(app, "patient.karen")
    page = karen.get("/me/messages").get_data(as_text=True)
    assert 'id="thread-patient"' in page and 'id="thread-team"' not in page
    assert "Hemmelig teamnote" not in page
    own = karen.get(f"/patients/{karen_id}/messages").get_data(as_text=True)
    assert 'id="thread-team"' not in own and "Hemmelig teamnote" not in own
    assert "Sygeplejerske Mette Holm · Hjemmesygeplejen, Aalby Kommune" in page
    response = karen.client.post("/me/messages", data={
        "csrf_token": csrf_token(page), "channel": "team", "body": "Snyd"})
    assert response.status_code == 400


@pytest.mark.parametrize(("username", "path", "status"), [
    ("patient.karen", "/patients/{karen}/messages", 200),  # her own thread only
    ("patient.karen", "/patients/{poul}/messages", 404),
    ("patient.karen", "/messages", 302),
    ("nurse.aalby", "/me/messages", 404),
    ("nurse.boestrup", "/patients/{karen}/messages", 404),
    ("gp.skovvej", "/patients/{else}/messages", 404),
    ("admin", "/patients/{karen}/messages", 404),
    ("nurse.boestrup", "/patients/{else}/messages", 200),
])
def test_the_message_pages_answer_404_to_anyone_who_may_not_see_them(
        app, username, path, status) -> None:
    url = path.format(karen=pid(app, KAREN), poul=pid(app, POUL), **{"else": pid(app, ELSE)})
    assert Browser(app, username).get(url).status_code == status


def _last_audit_id(engine) -> int:
    with Session(engine) as session:
        return max(session.exec(select(AuditRecord.id)).all(), default=None) or 0


def _messages(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Message.id)).all())
