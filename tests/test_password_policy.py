"""Password rules (NIST SP 800-63B 5.1.1.2) at every door, and no CPR probe for administrators."""

from __future__ import annotations

import pytest
from telekol.server.accounts import password_policy
from telekol.server.accounts.password_policy import (
    COMMON,
    CPR,
    NAME,
    REPEATED,
    TOO_SHORT_OR_LONG,
    problem,
)

from tests.test_admin_api import app, bearer, user  # noqa: F401  (fixtures and helpers)
from tests.test_admin_cli import telekol  # noqa: F401
from tests.test_web import csrf_token, log_in

KAREN_CPR = "2512489996"


@pytest.mark.parametrize(("password", "why"), [
    ("short", TOO_SHORT_OR_LONG), ("x" * 257, TOO_SHORT_OR_LONG),
    ("aaaaaaaaaaaa", REPEATED), (" " * 12, REPEATED), ("\u3000" * 12, REPEATED),
    ("abcabcabcabc", REPEATED), ("121212121212", REPEATED),
    ("password1234", COMMON), ("Password2026!", COMMON), ("123456789012", COMMON),
    ("qwertyuiop123", COMMON), ("iloveyou!!!!", COMMON), ("ＰＡＳＳＷＯＲＤ1234", COMMON),
    ("sommer2026!!", COMMON), ("Adgangskode1!", COMMON), ("telekol12345", COMMON),
    ("nurse.aalby", TOO_SHORT_OR_LONG), ("nurse.aalby!", NAME), ("NURSE.AALBY-2026", NAME),
    ("karen-2512489996", CPR), ("251248-9996-x", CPR),
])
def test_a_weak_password_is_refused_with_its_reason(password: str, why: str) -> None:
    found = problem(password, "nurse.aalby", KAREN_CPR)
    assert found is not None and found[0] == why


@pytest.mark.parametrize("password", ["correct horse battery staple", "Mælkebøtte-Ostemad-7",
                                      "tRq8-vLm2-xWp9", "a-long-enough-secret"])
def test_a_good_password_is_accepted(password: str) -> None:
    assert problem(password, "nurse.aalby", KAREN_CPR) is None


def test_the_blocklist_holds_the_shipped_lists() -> None:
    words = password_policy.blocklist()
    assert len(words) > 28_000 and {"password", "qwerty", "dragon", "kodeord"} <= words


def test_the_json_door_answers_the_reason_in_english_and_danish(app) -> None:  # noqa: F811
    client = app.test_client()
    answer = client.post("/api/admin/users/nurse.aalby/password", headers=bearer(app),
                         json={"password": "password1234"})
    assert answer.status_code == 400
    assert answer.get_json() == {
        "error": "this password is one of the most common passwords; choose another",
        "message": "denne adgangskode er en af de mest almindelige; vælg en anden"}
    answer = client.post("/api/admin/users", headers=bearer(app), json={
        "username": "anne.vang", "name": "Anne Vang", "role": "nurse",
        "organization": "muni-aalby", "password": "anne.vang-12345"})
    assert answer.status_code == 400 and "username" in answer.get_json()["error"]
    assert user(app, "anne.vang") is None


def test_the_page_says_why_in_the_readers_language(app) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client, "admin")
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    for lang, text in (("da", "må ikke være ét tegn"), ("en", "may not be one character")):
        answer = client.post(f"/admin/users/nurse.aalby/password?lang={lang}",
                             data={"password": "aaaaaaaaaaaa", "csrf_token": token})
        assert answer.status_code == 400 and text in answer.get_data(as_text=True)


def test_the_cli_says_why_in_english_and_danish(telekol) -> None:  # noqa: F811
    status, _out, err = telekol("user", "set-password", "nurse.aalby", "--password-stdin",
                                stdin="password1234\n")
    assert status == 2
    assert "error: this password is one of the most common passwords" in err
    assert "fejl: denne adgangskode er en af de mest almindelige" in err


@pytest.mark.parametrize("mistake", [
    {"username": "nurse.aalby"},  # exists
    {"password": "short"},
    {"name": ""},
])
def test_an_administrator_cannot_tell_an_enrolled_cpr_from_an_unknown_one(
        app, demo, mistake: dict) -> None:  # noqa: F811
    enrolled = demo["patients"][0]["cpr"]
    unknown = "0505609996"
    client = app.test_client()

    def answer(cpr: str) -> tuple[int, dict]:
        body = {"username": "karen.new", "name": "Karen", "role": "patient",
                "patient_cpr": cpr, "password": "a-long-enough-secret", **mistake}
        response = client.post("/api/admin/users", headers=bearer(app), json=body)
        return response.status_code, response.get_json()

    assert answer(enrolled) == answer(unknown)
    assert answer(enrolled)[0] == 400
