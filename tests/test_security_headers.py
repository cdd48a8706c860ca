"""Security headers on every answer, Socket.IO's included; no caching of personal data; a CSP
that names this site only; the Host header never written into FHIR links."""

from __future__ import annotations

import pytest
from telekol.server.config import load_settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.web import create_app
from telekol.server.web.headers import origin

from tests.test_web import app, log_in  # noqa: F401


def bearer(client, username: str = "nurse.aalby") -> dict[str, str]:
    token = client.post("/api/auth/token", json={"username": username,
                                                  "password": DEMO_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.mark.parametrize("path", ["/socket.io/?EIO=4&transport=polling",
                                  "/socket.io/?EIO=4&transport=bogus"])
def test_socket_io_answers_carry_the_security_headers(app, path: str) -> None:  # noqa: F811
    response = app.test_client().get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]


def test_pages_and_api_answers_with_patient_data_are_not_stored(app) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client)
    patient = app.config["fixture"]["patients"][0]["id"]
    for path in (f"/patients/{patient}", "/", f"/api/patients/{patient}/episode",
                 f"/fhir/Patient/{patient}"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    assert "no-store" not in client.get("/static/js/worklist.js").headers.get(
        "Cache-Control", "")


def test_the_csp_allows_this_sites_websocket_only_and_forms_to_itself(app) -> None:  # noqa: F811
    policy = app.test_client().get("/login").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["connect-src"] == "'self' ws://localhost"
    assert directives["form-action"] == "'self'"
    evil = app.test_client().get("/login", headers={"Host": "evil.example"})
    assert "evil.example" not in evil.headers["Content-Security-Policy"]


def test_a_foreign_host_header_is_not_written_into_fhir_links(app) -> None:  # noqa: F811
    client = app.test_client()
    patient = app.config["fixture"]["patients"][0]["id"]
    bundle = client.get(f"/fhir/Observation?patient={patient}&_count=1",
                        headers={**bearer(client), "Host": "evil.example"}).get_json()
    links = [link["url"] for link in bundle["link"]]
    links += [e["fullUrl"] for e in bundle.get("entry", [])]
    assert links and not any("evil.example" in url for url in links)
    assert all(url.startswith("http://127.0.0.1:") for url in links)


def test_a_configured_public_url_is_used_for_links(engine, demo, settings) -> None:
    url = engine.url.render_as_string(hide_password=False)
    public = create_app(settings.with_overrides(database_url=url,
                                                public_url="https://telekol.example.dk"),
                        live=False)
    client = public.test_client()
    patient = demo["patients"][0]["id"]
    bundle = client.get(f"/fhir/Observation?patient={patient}&_count=1",
                        headers={**bearer(client), "Host": "evil.example"}).get_json()
    assert all(link["url"].startswith("https://telekol.example.dk/fhir/Observation")
               for link in bundle["link"])
    policy = client.get("/login").headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://telekol.example.dk" in policy


@pytest.mark.parametrize(("host", "expected"), [
    ("localhost:5000", "http://localhost:5000"), ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("evil.example", "http://127.0.0.1:5000"), ("evil.example@localhost", "http://127.0.0.1:5000"),
    ("localhost/evil", "http://127.0.0.1:5000"), ("", "http://127.0.0.1:5000"),
])
def test_only_a_configured_host_name_is_trusted(tmp_path, host: str, expected: str) -> None:
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path)})
    assert origin(settings, host, "http") == expected


@pytest.mark.parametrize("bad", ["ftp://x.example", "https://x.example/path", "x.example"])
def test_a_public_url_with_a_path_or_without_a_scheme_is_refused(tmp_path, bad: str) -> None:
    with pytest.raises(ValueError, match="TELEKOL_PUBLIC_URL"):
        load_settings({"TELEKOL_DATA_DIR": str(tmp_path), "TELEKOL_PUBLIC_URL": bad})
