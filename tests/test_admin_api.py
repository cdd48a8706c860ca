"""The administration door at /api/admin: organisations and users, administrators only."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from telekol.server.accounts.login import MAX_FAILED_LOGINS, authenticate
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import Organization, User
from telekol.server.web import create_app
from telekol.server.web.auditing import noted

NEW_PASSWORD = "a-long-enough-secret"
ENDPOINTS = [
    ("get", "/api/admin/organizations", None),
    ("post", "/api/admin/organizations", {"id": "gp-x", "name": "X", "kind": "gp"}),
    ("patch", "/api/admin/organizations/gp-torvet", {"phone": "99 99 99 99"}),
    ("get", "/api/admin/users", None),
    ("post", "/api/admin/users", {"username": "x.y", "name": "X", "role": "admin"}),
    ("post", "/api/admin/users/nurse.aalby/deactivate", None),
    ("post", "/api/admin/users/nurse.aalby/reactivate", None),
    ("post", "/api/admin/users/nurse.aalby/unlock", None),
    ("post", "/api/admin/users/nurse.aalby/password", {"password": NEW_PASSWORD}),
]


@pytest.fixture
def app(engine, demo, settings: Settings):
    """Return an app on a seeded database, without the live MQTT bridge."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def bearer(app, username: str = "admin", password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Return the Authorization header of a fresh token for `username`."""
    body = app.test_client().post("/api/auth/token", json={
        "username": username, "password": password}).get_json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def user(app, username: str) -> User | None:
    with Session(app.config["engine"]) as session:
        return session.exec(select(User).where(User.username == username)).first()


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_stranger_gets_401(app, method, path, body) -> None:
    response = getattr(app.test_client(), method)(path, json=body)
    assert response.status_code == 401


@pytest.mark.parametrize("username", ["nurse.aalby", "gp.torvet", "patient.karen"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_anyone_but_an_administrator_gets_403(app, username, method, path, body) -> None:
    state = lambda: (lambda u: (u.active, u.token_version, u.password_hash))(  # noqa: E731
        user(app, "nurse.aalby"))
    before = state()
    response = getattr(app.test_client(), method)(path, json=body, headers=bearer(app, username))
    assert response.status_code == 403 and response.get_json() == {"error": "administrators only"}
    assert state() == before and user(app, "x.y") is None
    assert phone_of(app, "gp-torvet") == "+4586000031"


def phone_of(app, org_id: str) -> str | None:
    with Session(app.config["engine"]) as session:
        org = session.get(Organization, org_id)
        assert org is not None
        return org.phone


def test_the_organisations_are_listed_with_their_users_and_phone_numbers(app) -> None:
    found = app.test_client().get("/api/admin/organizations", headers=bearer(app)).get_json()
    aalby = next(o for o in found if o["id"] == "muni-aalby")
    assert aalby["kind"] == "municipality" and aalby["users"] == 1
    assert aalby["phone"] == "+4572000021"  # the demo number


def test_an_organisation_is_added_and_noted(app) -> None:
    with app.test_client() as client:
        response = client.post("/api/admin/organizations", headers=bearer(app), json={
            "id": "gp-havn", "name": "Lægerne ved Havnen", "kind": "gp",
            "sor_code": "900000000000099"})
        assert [(n.patient_ids, n.action, n.resource) for n in noted()] == [
            ((None,), "create", "Organization/gp-havn")]
    assert response.status_code == 201
    assert response.get_json() == {"id": "gp-havn", "name": "Lægerne ved Havnen", "kind": "gp",
                                   "sor_code": "900000000000099", "phone": None}


def test_an_organisation_is_added_with_the_number_its_patients_call(app) -> None:
    response = app.test_client().post("/api/admin/organizations", headers=bearer(app), json={
        "id": "gp-havn", "name": "Lægerne ved Havnen", "kind": "gp", "phone": "86 00 00 99"})
    assert response.status_code == 201 and response.get_json()["phone"] == "+4586000099"
    assert phone_of(app, "gp-havn") == "+4586000099"


@pytest.mark.parametrize(("sent", "stored"), [
    ("+45 86 12 34 56", "+4586123456"), ("", None), (None, None)])
def test_an_organisations_phone_number_is_changed_or_removed_and_noted(app, sent,
                                                                       stored) -> None:
    with app.test_client() as client:
        response = client.patch("/api/admin/organizations/gp-torvet", headers=bearer(app),
                                json={"phone": sent})
        assert [(n.patient_ids, n.action, n.resource, n.detail) for n in noted()] == [
            ((None,), "update", "Organization/gp-torvet", "phone")]
    assert response.status_code == 200 and response.get_json()["phone"] == stored
    assert phone_of(app, "gp-torvet") == stored


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("gp-torvet", {"phone": "112"}, 400, "a phone number is 8 digits"),
    ("gp-torvet", {"name": "Other"}, 400, "only the phone number can be changed"),
    ("gp-nowhere", {"phone": "86000031"}, 404, "no organisation gp-nowhere"),
])
def test_a_bad_phone_change_is_refused_and_changes_nothing(app, path, body, status,
                                                           message) -> None:
    response = app.test_client().patch(f"/api/admin/organizations/{path}", headers=bearer(app),
                                       json=body)
    assert response.status_code == status and message in response.get_json()["error"]
    assert phone_of(app, "gp-torvet") == "+4586000031"


@pytest.mark.parametrize(("body", "message"), [
    ({"id": "gp-havn", "name": "X", "kind": "gp", "sor_code": "12"}, "a SOR code is 6-20 digits"),
    ({"id": "gp-havn", "name": "X", "kind": "pharmacy"}, "kind must be one of"),
    ({"id": "gp-torvet", "name": "X", "kind": "gp"}, "already exists"),
    ({}, "an organisation id is"),
    ({"id": "gp-havn", "name": "X", "kind": "gp", "phone": "12 34"}, "a phone number is 8 digits"),
])
def test_a_bad_organisation_gets_400(app, body, message) -> None:
    response = app.test_client().post("/api/admin/organizations", headers=bearer(app), json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_the_user_list_has_no_password_hashes(app, demo) -> None:
    response = app.test_client().get("/api/admin/users", headers=bearer(app))
    users = response.get_json()
    assert {u["username"] for u in users} >= {u["username"] for u in demo["users"]}
    assert "argon2" not in response.get_data(as_text=True)


def test_a_user_without_a_password_gets_one_generated_once(app) -> None:
    response = app.test_client().post("/api/admin/users", headers=bearer(app), json={
        "username": "nurse.ny", "name": "Ny", "role": "nurse", "organization": "muni-aalby"})
    assert response.status_code == 201
    password = response.get_json()["password"]
    with Session(app.config["engine"]) as session:
        assert authenticate(session, "nurse.ny", password) is not None


def test_a_patient_user_is_linked_by_cpr(app, demo) -> None:
    patient = demo["patients"][2]
    with app.test_client() as client:
        response = client.post("/api/admin/users", headers=bearer(app), json={
            "username": "patient.ny", "name": "Ny", "role": "patient",
            "patient_cpr": patient["cpr"], "password": NEW_PASSWORD})
        assert noted()[0].patient_ids == (patient["id"],)
    assert response.status_code == 201 and "password" not in response.get_json()
    assert user(app, "patient.ny").patient_id == patient["id"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "message"), [
    ({"role": "nurse"}, "needs --org"),
    ({"role": "patient", "patient_cpr": "050560-9996"}, "no patient has this CPR number"),
    ({"role": "admin", "password": "short"}, "a password is 12-256 characters"),
    ({"role": "admin", "username": "admin"}, "user admin already exists"),
])
def test_a_bad_user_gets_400(app, body, message) -> None:
    response = app.test_client().post("/api/admin/users", headers=bearer(app), json={
        "username": "someone", "name": "S", **body})
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_deactivation_ends_the_users_tokens_until_reactivated(app) -> None:
    client, admin = app.test_client(), bearer(app)
    nurse = bearer(app, "nurse.aalby")
    answer = client.post("/api/admin/users/nurse.aalby/deactivate", headers=admin).get_json()
    assert answer["username"] == "nurse.aalby" and answer["active"] is False
    assert client.get("/api/patients", headers=nurse).status_code == 401
    assert client.post("/api/admin/users/nurse.aalby/reactivate", headers=admin
                       ).get_json()["active"] is True
    assert client.get("/api/patients", headers=bearer(app, "nurse.aalby")).status_code == 200


def test_an_administrator_cannot_deactivate_themselves(app) -> None:
    response = app.test_client().post("/api/admin/users/admin/deactivate", headers=bearer(app))
    assert response.status_code == 400
    assert response.get_json() == {"error": "you cannot deactivate yourself",
                                   "message": "du kan ikke deaktivere dig selv"}


def test_unlock_and_password(app) -> None:
    with Session(app.config["engine"]) as session:
        for _ in range(MAX_FAILED_LOGINS):
            authenticate(session, "gp.torvet", "wrong")
    client, admin = app.test_client(), bearer(app)
    assert client.post("/api/admin/users/gp.torvet/unlock", headers=admin
                       ).get_json()["locked_until"] is None
    old = bearer(app, "gp.torvet")
    response = client.post("/api/admin/users/gp.torvet/password", headers=admin,
                           json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert client.get("/api/patients", headers=old).status_code == 401
    assert client.get("/api/patients", headers=bearer(app, "gp.torvet", NEW_PASSWORD)
                      ).status_code == 200


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/admin/users/nobody/deactivate", None, 404),
    ("/api/admin/users/nurse.aalby/promote", None, 404),
    ("/api/admin/users/nurse.aalby/password", {"password": "short"}, 400),
    ("/api/admin/users/nurse.aalby/password", None, 400),
])
def test_a_bad_user_action_is_refused(app, path, body, status) -> None:
    response = app.test_client().post(path, headers=bearer(app), json=body)
    assert response.status_code == status and response.get_json()["error"]


def test_a_cookie_session_needs_the_csrf_token(app) -> None:
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "admin", "password": DEMO_PASSWORD,
                                "csrf_token": token})
    assert client.post("/api/admin/users/nurse.aalby/unlock").status_code == 400
    assert client.post("/api/admin/users/nurse.aalby/unlock",
                       headers={"X-CSRFToken": token}).status_code == 200
