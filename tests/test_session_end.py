"""Logout ends the session on the server: a cookie copied before it, and the user's bearer
tokens, stop working at once (CONTRACT §7 "Sessions end")."""

from __future__ import annotations

from tests.test_account_security import api_login, app, clock, form_login  # noqa: F401
from tests.test_web import csrf_token

PASSWORD = "telekol-demo"


def session_cookie_of(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def test_a_cookie_copied_before_logout_no_longer_works(app) -> None:  # noqa: F811
    browser = app.test_client()
    assert form_login(browser, "nurse.aalby", PASSWORD).status_code == 302
    copied = session_cookie_of(browser)
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/api/patients").status_code == 200  # the copy works before logout
    token = csrf_token(browser.get("/messages").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/api/patients").status_code == 401
    page = thief.get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_logout_ends_the_users_bearer_tokens_and_other_sessions(app) -> None:  # noqa: F811
    api = app.test_client()
    bearer = {"Authorization": "Bearer " + api_login(api, "nurse.aalby", PASSWORD)
              .get_json()["access_token"]}
    other, browser = app.test_client(), app.test_client()
    form_login(other, "nurse.aalby", PASSWORD)
    form_login(browser, "nurse.aalby", PASSWORD)
    assert api.get("/api/patients", headers=bearer).status_code == 200
    token = csrf_token(browser.get("/messages").get_data(as_text=True))
    browser.post("/logout", data={"csrf_token": token})
    assert api.get("/api/patients", headers=bearer).status_code == 401
    assert other.get("/api/patients").status_code == 401
    # Logging in again works.
    assert form_login(app.test_client(), "nurse.aalby", PASSWORD).status_code == 302


def test_an_api_client_logs_out_with_its_token(app) -> None:  # noqa: F811
    client = app.test_client()
    bearer = {"Authorization": "Bearer " + api_login(client, "gp.torvet", PASSWORD)
              .get_json()["access_token"]}
    assert client.post("/api/auth/logout", headers=bearer).status_code == 204
    assert client.get("/api/patients", headers=bearer).status_code == 401
    assert client.post("/api/auth/logout", headers=bearer).status_code == 401
