"""Administration pages: organisations, users and the audit log, for administrators only."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select
from telekol.server.accounts.login import MAX_FAILED_LOGINS, authenticate
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import Organization, User
from telekol.server.web import create_app
from telekol.server.web.auditing import noted
from telekol.server.web.locale import LANG_COOKIE

PAGES = ["/admin/organizations", "/admin/users", "/admin/audit"]
WRITES = ["/admin/organizations", "/admin/organizations/gp-torvet/phone", "/admin/users",
          "/admin/users/nurse.aalby/deactivate", "/admin/users/nurse.aalby/unlock",
          "/admin/users/nurse.aalby/password"]
NEW_PASSWORD = "a-long-enough-secret"


@pytest.fixture
def app(engine, demo, settings: Settings):
    """Return an app on a seeded database, without the live MQTT bridge."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def csrf_token(html: str) -> str:
    """Return the CSRF token of a rendered page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def logged_in(app, username: str = "admin", password: str = DEMO_PASSWORD) -> FlaskClient:
    """Return an English-speaking client logged in through the form."""
    client = app.test_client()
    client.set_cookie(LANG_COOKIE, "en")
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, f"{username} could not log in"
    return client


def post(client: FlaskClient, path: str, **data: str):
    """Submit a form on `path` with the session's CSRF token."""
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def user(app, username: str) -> User | None:
    with Session(app.config["engine"]) as session:
        return session.exec(select(User).where(User.username == username)).first()


@pytest.mark.parametrize("username", ["nurse.aalby", "doctor.hospital", "gp.torvet",
                                      "patient.karen"])
@pytest.mark.parametrize("path", PAGES)
def test_the_pages_are_absent_for_everyone_but_administrators(app, username, path) -> None:
    assert logged_in(app, username).get(path).status_code == 404


@pytest.mark.parametrize("path", WRITES)
def test_a_clinician_cannot_administer_by_posting_either(app, path) -> None:
    client = logged_in(app, "nurse.aalby")
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "username": "x", "role": "admin",
                                       "name": "X", "password": NEW_PASSWORD})
    assert response.status_code == 404
    assert user(app, "x") is None and user(app, "nurse.aalby").active  # type: ignore[union-attr]


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_send_a_stranger_to_the_login_page(app, path) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_organisation_list_shows_kind_sor_code_and_users(app) -> None:
    page = logged_in(app).get("/admin/organizations").get_data(as_text=True)
    row = re.search(r'<tr data-org="muni-aalby">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells[0] == "muni-aalby" and cells[2] == "Municipality" and cells[4] == "1"


def test_an_administrator_adds_an_organisation(app) -> None:
    with logged_in(app) as client:
        response = post(client, "/admin/organizations", id="gp-havn",
                        name="Lægerne ved Havnen", kind="gp", sor_code="900000000000099")
        assert response.status_code == 303
        assert [(n.patient_ids, n.action, n.resource) for n in noted()] == [
            ((None,), "create", "Organization/gp-havn")]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Organisation gp-havn added." in page and "Lægerne ved Havnen" in page
    with Session(app.config["engine"]) as session:
        org = session.get(Organization, "gp-havn")
    assert org is not None and org.kind == "gp" and org.sor_code == "900000000000099"


def phone_of(app, org_id: str) -> str | None:
    with Session(app.config["engine"]) as session:
        org = session.get(Organization, org_id)
        assert org is not None
        return org.phone


def test_an_organisation_is_added_with_a_phone_number_shown_in_pairs(app) -> None:
    client = logged_in(app)
    response = post(client, "/admin/organizations", id="gp-havn", name="Lægerne ved Havnen",
                    kind="gp", phone="+45 86000099")
    assert response.status_code == 303 and phone_of(app, "gp-havn") == "+4586000099"
    page = client.get("/admin/organizations").get_data(as_text=True)
    row = re.search(r'<tr data-org="gp-havn">(.*?)</tr>', page, re.S)
    assert row is not None and 'name="phone" type="tel" maxlength="30" value="86 00 00 99"' \
        in row.group(1)


@pytest.mark.parametrize(("typed", "stored", "flash"), [
    ("86 12 34 56", "+4586123456", "Phone number of gp-torvet saved."),
    ("", None, "Phone number of gp-torvet removed."),
])
def test_an_administrator_changes_or_removes_a_phone_number(app, typed, stored, flash) -> None:
    client = logged_in(app)
    with client:
        response = post(client, "/admin/organizations/gp-torvet/phone", phone=typed)
        assert [(n.action, n.resource, n.detail) for n in noted()] == [
            ("update", "Organization/gp-torvet", "phone")]
    assert response.status_code == 303 and phone_of(app, "gp-torvet") == stored
    assert flash in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_bad_phone_number_is_refused_with_the_reason(app) -> None:
    response = post(logged_in(app), "/admin/organizations/gp-torvet/phone", phone="112")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "gp-torvet: a phone number is 8 digits, or + and the country code first" in page
    assert phone_of(app, "gp-torvet") == "+4586000031"


@pytest.mark.parametrize(("form", "message"), [
    ({"id": "ok", "name": "X", "kind": "gp", "phone": "0"}, "a phone number is 8 digits"),
    ({"id": "Bad Id", "name": "X", "kind": "gp"}, "an organisation id is 1-64"),
    ({"id": "ok", "name": "X", "kind": "pharmacy"}, "kind must be one of"),
    ({"id": "ok", "name": " ", "kind": "gp"}, "a name is 1-200 characters"),
    ({"id": "ok", "name": "X", "kind": "gp", "sor_code": "12ab"}, "a SOR code is 6-20 digits"),
    ({"id": "gp-torvet", "name": "X", "kind": "gp"}, "organisation gp-torvet already exists"),
])
def test_a_bad_organisation_shows_the_form_again_with_the_error(app, form, message) -> None:
    response = post(logged_in(app), "/admin/organizations", **form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert 'id="add-organization"' in page
    with Session(app.config["engine"]) as session:
        assert session.get(Organization, "ok") is None


def test_the_user_list_shows_state_but_never_a_password_hash(app, demo) -> None:
    page = logged_in(app).get("/admin/users").get_data(as_text=True)
    assert all(f'data-user="{u["username"]}"' in page for u in demo["users"])
    assert "argon2" not in page and "password_hash" not in page


def test_an_administrator_adds_a_nurse_who_can_then_log_in(app) -> None:
    with logged_in(app) as client:
        response = post(client, "/admin/users", username="nurse.ny", name="Sygeplejerske Ny",
                        role="nurse", organization="muni-aalby", password=NEW_PASSWORD)
        assert response.status_code == 303
        assert [(n.patient_ids, n.action, n.resource) for n in noted()] == [
            ((None,), "create", "User/nurse.ny")]
    assert "User nurse.ny added." in client.get("/admin/users").get_data(as_text=True)
    made = user(app, "nurse.ny")
    assert made is not None and made.organization_id == "muni-aalby" and made.role == "nurse"
    nurse = logged_in(app, "nurse.ny", NEW_PASSWORD)
    assert nurse.get("/api/patients").status_code == 200


def test_a_patient_user_is_linked_by_cpr_and_the_patient_is_noted(app, demo) -> None:
    patient = demo["patients"][1]
    with logged_in(app) as client:
        response = post(client, "/admin/users", username="patient.ny", name="Patient Ny",
                        role="patient", organization="muni-aalby",
                        cpr=f"{patient['cpr'][:6]}-{patient['cpr'][6:]}", password=NEW_PASSWORD)
        assert response.status_code == 303
        assert noted()[0].patient_ids == (patient["id"],)
    made = user(app, "patient.ny")
    assert made is not None and made.patient_id == patient["id"]
    assert made.organization_id is None  # an organisation is for clinical roles only


@pytest.mark.parametrize(("form", "message"), [
    ({"role": "nurse"}, "needs an organisation"),
    ({"role": "nurse", "organization": "nowhere"}, "no organisation nowhere"),
    ({"role": "patient"}, "needs the patient&#39;s CPR number"),
    ({"role": "patient", "cpr": "12345"}, "a CPR number is 10 digits"),
    ({"role": "patient", "cpr": "050560-9996"}, "no patient has this CPR number"),
    ({"role": "admin", "password": "short"}, "a password is 12-256 characters"),
    ({"role": "wizard"}, "role must be one of"),
    ({"role": "admin", "username": "gp.torvet"}, "user gp.torvet already exists"),
    ({"role": "admin", "username": "Bad Name"}, "a username is 2-64"),
])
def test_a_bad_user_shows_the_form_again_with_the_error(app, form, message) -> None:
    data = {"username": "someone", "name": "S", "password": NEW_PASSWORD, **form}
    response = post(logged_in(app), "/admin/users", **data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page, page
    assert 'id="add-user"' in page and user(app, "someone") is None


def test_a_deactivated_user_is_logged_out_and_can_be_reactivated(app) -> None:
    nurse = logged_in(app, "nurse.aalby")
    assert nurse.get("/").status_code == 200
    with logged_in(app) as client:
        response = post(client, "/admin/users/nurse.aalby/deactivate")
        assert response.status_code == 303
        assert [(n.action, n.resource, n.detail) for n in noted()] == [
            ("update", "User/nurse.aalby", "deactivate")]
    assert "/login" in nurse.get("/").headers["Location"]
    with Session(app.config["engine"]) as session:
        assert authenticate(session, "nurse.aalby", DEMO_PASSWORD) is None
    assert post(client, "/admin/users/nurse.aalby/reactivate").status_code == 303
    assert logged_in(app, "nurse.aalby").get("/").status_code == 200


def test_an_administrator_cannot_deactivate_themselves(app) -> None:
    client = logged_in(app)
    response = post(client, "/admin/users/admin/deactivate")
    assert response.status_code == 400
    assert "you cannot deactivate yourself" in response.get_data(as_text=True)
    assert user(app, "admin").active  # type: ignore[union-attr]
    assert client.get("/admin/users").status_code == 200


def test_a_locked_user_is_unlocked(app) -> None:
    with Session(app.config["engine"]) as session:
        for _ in range(MAX_FAILED_LOGINS):
            authenticate(session, "gp.torvet", "wrong")
    locked = user(app, "gp.torvet")
    assert locked is not None and locked.locked_until is not None
    assert post(logged_in(app), "/admin/users/gp.torvet/unlock").status_code == 303
    unlocked = user(app, "gp.torvet")
    assert unlocked is not None and unlocked.locked_until is None
    assert unlocked.failed_logins == 0


def test_a_new_password_ends_the_users_sessions(app) -> None:
    nurse = logged_in(app, "nurse.aalby")
    before = user(app, "nurse.aalby").token_version  # type: ignore[union-attr]
    response = post(logged_in(app), "/admin/users/nurse.aalby/password", password=NEW_PASSWORD)
    assert response.status_code == 303
    assert user(app, "nurse.aalby").token_version == before + 1  # type: ignore[union-attr]
    assert nurse.get("/").status_code == 302
    logged_in(app, "nurse.aalby", NEW_PASSWORD)


@pytest.mark.parametrize(("path", "form", "status", "message"), [
    ("/admin/users/nurse.aalby/password", {"password": "short"}, 400, "12-256 characters"),
    ("/admin/users/nobody/password", {"password": NEW_PASSWORD}, 400, "no user nobody"),
    ("/admin/users/nobody/unlock", {}, 400, "no user nobody"),
    ("/admin/users/nurse.aalby/promote", {}, 404, ""),
])
def test_a_bad_user_action_is_refused(app, path, form, status, message) -> None:
    response = post(logged_in(app), path, **form)
    assert response.status_code == status and message in response.get_data(as_text=True)


def test_a_form_without_csrf_token_is_refused(app) -> None:
    response = logged_in(app).post("/admin/users/nurse.aalby/deactivate")
    assert response.status_code == 400 and user(app, "nurse.aalby").active  # type: ignore[union-attr]


def add_records(app, patient_id: str, count: int) -> None:
    """Append `count` audit records of a nurse reading a patient."""
    from telekol.server.audit import log as audit

    actor = audit.Actor.of(user(app, "nurse.aalby"))
    entries = [audit.Entry(actor, patient_id, "read", f"Observation?patient={patient_id}&n={n}",
                           "api", status=200) for n in range(count)]
    with Session(app.config["engine"]) as session:
        audit.append(session, entries)
        session.commit()


def audit_rows(page: str) -> list[str]:
    """Return the resources of the records the audit page shows, in order."""
    rows = re.findall(r'<tr data-record="\d+"[^>]*>(.*?)</tr>', page, re.S)
    return [re.findall(r'<code class="technical small">(.*?)</code>', row, re.S)[0]
            for row in rows]


def test_the_audit_search_pages_a_patients_records_newest_first(app, demo) -> None:
    first, second = demo["patients"][0]["id"], demo["patients"][1]["id"]
    add_records(app, first, 60)
    add_records(app, second, 3)
    with logged_in(app) as client:
        page = client.get(f"/admin/audit?patient={first}").get_data(as_text=True)
        assert [(n.patient_ids, n.action, n.resource) for n in noted()] == [
            ((first,), "search", f"AuditEvent?patient={first}")]
    shown = audit_rows(page)
    assert shown == [f"Observation?patient={first}&amp;n={n}" for n in range(59, 9, -1)]
    older = re.search(r'<a id="older" href="([^"]+)"', page)
    assert older is not None
    rest = audit_rows(client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True))
    assert rest == [f"Observation?patient={first}&amp;n={n}" for n in range(9, -1, -1)]


def test_an_unfiltered_audit_search_concerns_no_patient(app) -> None:
    with logged_in(app) as client:
        assert client.get("/admin/audit?door=api&action=read").status_code == 200
        assert [(n.patient_ids, n.resource) for n in noted()] == [
            ((None,), "AuditEvent?action=read&door=api")]


@pytest.mark.parametrize(("query", "found"), [
    ("user=nurse.aalby", 4),
    ("user=gp.torvet", 0),
    ("org=muni-aalby&action=read", 4),
    ("org=gp-torvet", 0),
    ("door=fhir&org=muni-aalby", 0),
    ("from=2000-01-01&to=2999-12-31&org=muni-aalby", 4),
    ("from=2999-01-01&org=muni-aalby", 0),
    ("to=2000-01-01&org=muni-aalby", 0),
])
def test_the_audit_search_filters(app, demo, query, found) -> None:
    add_records(app, demo["patients"][0]["id"], 4)
    page = logged_in(app).get(f"/admin/audit?{query}").get_data(as_text=True)
    assert len(audit_rows(page)) == found


@pytest.mark.parametrize(("query", "message"), [
    ("user=nobody", "No user nobody."), ("from=yesterday", "A date is written YYYY-MM-DD.")])
def test_a_bad_audit_search_says_why(app, query, message) -> None:
    response = logged_in(app).get(f"/admin/audit?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_the_audit_page_shows_an_intact_chain(app, demo) -> None:
    add_records(app, demo["patients"][0]["id"], 2)
    client = logged_in(app)
    assert "Intact" not in client.get("/admin/audit").get_data(as_text=True)  # only on request
    page = client.get("/admin/audit?verify=1").get_data(as_text=True)
    count = re.search(r"Intact: (\d+) records checked", page)
    assert count is not None and int(count.group(1)) >= 2


def test_the_audit_page_shows_where_a_chain_is_broken(app, monkeypatch) -> None:
    from telekol.server.audit import log as audit

    monkeypatch.setattr(audit, "verify", lambda _session, _anchors=(): audit.ChainCheck(
        False, 6, 7, "the record was changed"))
    page = logged_in(app).get("/admin/audit?verify=1").get_data(as_text=True)
    assert "Broken at record #7: the record was changed" in page


def test_the_audit_page_shows_a_truncated_chain(app, monkeypatch) -> None:
    from telekol.server.audit import log as audit

    monkeypatch.setattr(audit, "verify", lambda _session, _anchors=(): audit.ChainCheck(
        False, 6, None, "truncated: the head anchored at T is record 9, the chain ends at 6"))
    page = logged_in(app).get("/admin/audit?verify=1").get_data(as_text=True)
    assert "Broken: truncated: the head anchored at T is record 9" in page


def test_administrative_acts_leave_audit_records(app) -> None:
    client = logged_in(app)
    post(client, "/admin/users", username="nurse.ny", name="Ny", role="nurse",
         organization="muni-aalby", password=NEW_PASSWORD)
    post(client, "/admin/users/nurse.ny/deactivate")
    post(client, "/admin/users/admin/deactivate")
    from telekol.server.audit import log as audit

    with Session(app.config["engine"]) as session:
        rows = audit.search(session, door="ui", limit=10)
    acts = [(r.username, r.patient_id, r.action, r.resource, r.detail, r.outcome)
            for r in rows if r.resource.startswith("User/")]
    assert acts == [("admin", None, "update", "User/admin", "deactivate", "failed"),
                    ("admin", None, "update", "User/nurse.ny", "deactivate", "success"),
                    ("admin", None, "create", "User/nurse.ny", "", "success")]
