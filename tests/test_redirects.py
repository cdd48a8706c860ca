"""`next` on /login and /language/<code> leads only to a path on this site."""

from __future__ import annotations

import pytest
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.web.redirects import local_target

from tests.test_web import app, csrf_token  # noqa: F401  (the app fixture)

HOSTILE = [
    "//evil.example/", "/\t/evil.example/", "/\n/evil.example/", "/\r//evil.example",
    "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "https://evil.example/",
    "javascript:alert(1)", "evil.example", "http:/evil.example", "/\x00/evil.example",
    "/\x7f/evil.example", " //evil.example", "/\u3000/evil.example", "/\u2028/evil.example",
    "///evil.example", "",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_a_target_that_could_leave_the_site_is_refused(target: str) -> None:
    assert local_target(target) is None


@pytest.mark.parametrize("target", ["/", "/patients/abc", "/worklist?sort=due&page=2",
                                    "/login?next=%2Fpatients", "/a/b/%2F%2Fc"])
def test_a_path_on_this_site_is_kept(target: str) -> None:
    assert local_target(target) == target


@pytest.mark.parametrize("query", ["/%09/evil.example/", "%2F%2Fevil.example", "/%5Cevil.example",
                                   "https:%2F%2Fevil.example", "/%0A/evil.example"])
def test_the_language_switch_falls_back_to_the_default_page(app, query: str) -> None:  # noqa: F811
    response = app.test_client().get(f"/language/en?next={query}")
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\t/evil.example/", "/\\evil.example", "//evil.example"])
def test_a_successful_login_falls_back_to_the_default_page(app, target: str) -> None:  # noqa: F811
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "nurse.aalby", "password": DEMO_PASSWORD,
                                           "csrf_token": token, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_local_next_is_followed_after_login(app) -> None:  # noqa: F811
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "nurse.aalby", "password": DEMO_PASSWORD,
                                           "csrf_token": token, "next": "/messages"})
    assert response.headers["Location"] == "/messages"
