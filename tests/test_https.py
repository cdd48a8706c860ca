"""HTTPS: `Secure` cookies and HSTS whenever the request came over TLS, and only then.

TLS either ends in gunicorn itself (TELEKOL_HTTPS_CERT / TELEKOL_HTTPS_KEY) or at a reverse
proxy, whose X-Forwarded-Proto is believed only when TELEKOL_PROXY_HOPS is set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from telekol.server.broker.tls import ensure_local_certificate
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.migrate import upgrade
from telekol.server.ops.supervisor import free_port
from telekol.server.web import create_app
from telekol.server.web.transport import HSTS

from tests.test_web import csrf_token

TLS = "https://localhost"
FORWARDED_TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def login_cookies(client, headers: dict[str, str] | None = None,
                  base_url: str = "http://localhost") -> list[str]:
    """Log in as a nurse through the form and return the Set-Cookie headers of the answer."""
    page = client.get("/login", headers=headers, base_url=base_url)
    # As browsers do (Referrer-Policy same-origin); Flask-WTF requires it under TLS.
    headers = {**(headers or {}), "Referer": "https://localhost/login"}
    answer = client.post("/login", headers=headers, base_url=base_url, data={
        "username": "nurse.aalby", "password": DEMO_PASSWORD,
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert answer.status_code == 302
    return answer.headers.getlist("Set-Cookie")


def app_for(engine, settings: Settings, proxy_hops: int = 0):
    url = engine.url.render_as_string(hide_password=False)
    return create_app(settings.with_overrides(database_url=url, proxy_hops=proxy_hops),
                      live=False)


def test_over_tls_every_cookie_is_secure_and_hsts_is_sent(engine, demo, settings) -> None:
    client = app_for(engine, settings).test_client()
    cookies = login_cookies(client, base_url=TLS)
    assert cookies and all("; Secure" in c for c in cookies)
    page = client.get("/", base_url=TLS)
    assert page.headers["Strict-Transport-Security"] == HSTS


def test_socket_io_answers_over_tls_carry_hsts_too(engine, demo, settings) -> None:
    client = app_for(engine, settings).test_client()
    polling = client.get("/socket.io/?EIO=4&transport=polling", base_url=TLS)
    assert polling.headers["Strict-Transport-Security"] == HSTS


def test_over_plain_http_cookies_are_not_secure_and_there_is_no_hsts(
        engine, demo, settings) -> None:
    client = app_for(engine, settings).test_client()
    cookies = login_cookies(client)
    assert cookies and not any("; Secure" in c for c in cookies)
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_a_forwarded_proto_header_is_ignored_unless_a_proxy_is_configured(
        engine, demo, settings) -> None:
    client = app_for(engine, settings).test_client()
    cookies = login_cookies(client, FORWARDED_TLS)
    assert not any("; Secure" in c for c in cookies)
    assert "Strict-Transport-Security" not in client.get("/", headers=FORWARDED_TLS).headers


def test_behind_a_configured_proxy_a_tls_request_gets_secure_cookies_and_hsts(
        engine, demo, settings) -> None:
    app = app_for(engine, settings, proxy_hops=1)
    client = app.test_client()
    cookies = login_cookies(client, FORWARDED_TLS)
    assert cookies and all("; Secure" in c for c in cookies)
    assert client.get("/", headers=FORWARDED_TLS).headers["Strict-Transport-Security"] == HSTS
    plain = client.get("/", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers  # the proxy's plain port


@pytest.mark.integration
def test_telekol_server_serves_https_itself_with_a_configured_certificate(
        tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    port = free_port()
    own = ensure_local_certificate(Settings(data_dir=data), datetime.now(UTC))
    env = dict(os.environ, TELEKOL_DATA_DIR=str(data), TELEKOL_HTTP_PORT=str(port),
               TELEKOL_MQTT_PORT=str(free_port()), TELEKOL_HTTPS_CERT=str(own.cert),
               TELEKOL_HTTPS_KEY=str(own.key), TELEKOL_HTTP_WORKERS="1")
    upgrade(f"sqlite:///{data / 'telekol.db'}")
    server = subprocess.Popen([sys.executable, "-m", "telekol.server.ops.cli", "server"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        answer = _first_answer(f"https://127.0.0.1:{port}/login", str(own.ca))
        assert answer.status_code == 200
        assert answer.headers["Strict-Transport-Security"] == HSTS
        cookies = answer.raw.headers.getlist("Set-Cookie")
        assert cookies and all("; Secure" in c for c in cookies)
        with pytest.raises(requests.ConnectionError):  # no plain HTTP on that port
            requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


def _first_answer(url: str, ca: str) -> requests.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return requests.get(url, verify=ca, timeout=5)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # polling for the port: gunicorn gives no ready signal
