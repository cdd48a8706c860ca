"""GET /metrics (server/web/metrics_view.py): who may scrape it, and what it answers."""

from __future__ import annotations

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from telekol.server.web import create_app

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def app(settings, tmp_path) -> Flask:
    """Return an app on an empty SQLite database (/metrics reads none)."""
    return create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path}/m.db"),
                      live=False)


@pytest.fixture
def guarded(settings, tmp_path) -> Flask:
    """Return an app with TELEKOL_METRICS_TOKEN set."""
    return create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path}/m.db",
                                              metrics_token=TOKEN), live=False)


def scrape(app: Flask, address: str, headers: dict[str, str] | None = None, query: str = ""):
    """GET /metrics as a client at `address`."""
    return app.test_client().get(f"/metrics{query}", headers=headers or {},
                                 environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize(("address", "headers", "status"), [
    ("127.0.0.1", {}, 200),
    ("127.0.0.53", {}, 200),
    ("::1", {}, 200),
    ("::ffff:127.0.0.1", {}, 200),
    ("10.1.2.3", {}, 403),
    ("2001:db8::1", {}, 403),
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),  # a proxy on this host
    ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, 403),
    ("127.0.0.1", {"Authorization": f"Bearer {TOKEN}"}, 200),  # no token set: address only
])
def test_without_a_token_only_this_machine_may_scrape(app, address, headers, status) -> None:
    assert scrape(app, address, headers).status_code == status


@pytest.mark.parametrize(("address", "headers", "status"), [
    ("10.1.2.3", {"Authorization": f"Bearer {TOKEN}"}, 200),
    ("127.0.0.1", {"Authorization": f"Bearer {TOKEN}"}, 200),
    ("127.0.0.1", {}, 401),  # with a token set, this machine needs it too
    ("10.1.2.3", {}, 401),
    ("10.1.2.3", {"Authorization": "Bearer wrong"}, 401),
    ("10.1.2.3", {"Authorization": f"Basic {TOKEN}"}, 401),
])
def test_with_a_token_set_every_scrape_must_bring_it(guarded, address, headers,
                                                     status) -> None:
    response = scrape(guarded, address, headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("lang", "says"), [
    ("en", "only served to this machine"), ("da", "kun på denne maskine")])
def test_a_refusal_says_why_in_the_readers_language(app, lang, says) -> None:
    response = scrape(app, "10.1.2.3", query=f"?lang={lang}")
    assert says in response.get_data(as_text=True)


def test_the_answer_is_the_prometheus_text_format_with_the_platforms_metrics(app) -> None:
    app.test_client().get("/healthz")
    response = scrape(app, "127.0.0.1")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(
        as_text=True))}
    for name in ("telekol_gateway_messages_received", "telekol_ingest_statuses",
                 "telekol_ingest_commit_seconds", "telekol_alerts", "telekol_http_request_seconds",
                 "telekol_live_events_pushed", "telekol_db_pool_checked_out"):
        assert name in families
    assert any(s.labels.get("route") == "/healthz"
               for s in families["telekol_http_request_seconds"].samples)
