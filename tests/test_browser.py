"""The clinician's work list in headless Chromium against the whole running platform."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack, StatusListener

pytestmark = pytest.mark.browser


def device_of(stack: Stack, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the demo patient called `name` and the device at home with them."""
    patient = next(p for p in stack.fixture["patients"] if p["name"] == name)
    return next(d for d in stack.fixture["devices"] if d["patient"] == patient["id"]), patient


def member_of(stack: Stack, patient: dict[str, Any], kind: str) -> str:
    """Return a user of the patient's care-team organisation of `kind` (e.g. municipality)."""
    kinds = {o["id"]: o["kind"] for o in stack.fixture["organizations"]}
    org = next(o for o in patient["care_team"] if kinds[o] == kind)
    return next(u["username"] for u in stack.fixture["users"] if u["organization"] == org)


def submit_login(page: Page, stack: Stack, username: str, password: str) -> None:
    """Fill in and submit the login form."""
    page.goto(f"{stack.base_url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")


def open_dashboard(page: Page, stack: Stack, username: str) -> None:
    """Log in as `username` and wait until the work list is shown and live.

    The rows are rendered by the server; once the live connection is up (its rooms joined),
    anything that changes later was pushed live, not loaded.
    """
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    submit_login(page, stack, username, stack.user(username)["password"])
    try:
        expect(page).to_have_url(f"{stack.base_url}/", timeout=WAIT_MS)
        expect(page.locator('#live-state[data-state="live"]')).to_be_visible(timeout=WAIT_MS)
    except AssertionError:
        failed = [f"{r.status} {r.url}" for r in responses if r.status >= 400]
        pytest.fail(f"the work list never went live; failed requests: {failed}")


def row(page: Page, patient_id: str) -> Locator:
    """Return the patient's row (a <tbody>) on the work list."""
    return page.locator(f'#worklist tbody[data-patient="{patient_id}"]')


def publish_readings(stack: Stack, device: dict[str, Any], readings: dict[str, float]) -> None:
    """Publish one measurement with `mosquitto_pub` and wait until the gateway accepts it."""
    msg_id = f"browser-{uuid.uuid4().hex}"
    body = {
        "msg_id": msg_id,
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "readings": [{"code": code, "value": value} for code, value in readings.items()],
    }
    listener = StatusListener(stack, device)
    try:
        result = stack.mosquitto_pub(device, json.dumps(body))
        assert result.returncode == 0, result.stderr
        assert listener.wait_for(msg_id)["result"] == "accepted"
    finally:
        listener.close()


def publish_spo2(stack: Stack, device: dict[str, Any], spo2: float) -> None:
    """Publish one SpO2 reading and wait until the gateway accepts it."""
    publish_readings(stack, device, {"spo2": spo2})


def api(page: Page, stack: Stack, method: str, path: str, body: Any = None) -> Any:
    """Call the JSON API with the page's session (and its CSRF token for POST)."""
    if method == "GET":
        response = page.request.get(f"{stack.base_url}{path}")
    else:
        token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
        response = page.request.post(f"{stack.base_url}{path}", data=body or {},
                                     headers={"X-CSRFToken": token})
    assert response.ok, (path, response.status, response.text())
    return response.json()


def resolve_unresolved(page: Page, stack: Stack, patient_id: str) -> None:
    """Resolve the patient's unresolved alerts (the page's user must be responsible) so
    that the next reading opens a new one."""
    for alert in api(page, stack, "GET", "/api/alerts?since=0&limit=5000"):
        if alert["patient"]["id"] == patient_id and alert["status"] != "resolved":
            api(page, stack, "POST", f"/api/alerts/{alert['id']}/resolve")


def expect_language(page: Page, lang: str, texts: dict[str, str | re.Pattern[str]]) -> None:
    """Expect `<html lang>` to be `lang` and each selector to show its text."""
    expect(page.locator("html")).to_have_attribute("lang", lang, timeout=WAIT_MS)
    for selector, text in texts.items():
        expect(page.locator(selector)).to_have_text(text, timeout=WAIT_MS)


def test_a_municipal_nurse_sees_a_new_red_alert_appear_without_reloading(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, patient = device_of(stack, "Birthe Test Andersen")
    page = new_page()
    open_dashboard(page, stack, member_of(stack, patient, "municipality"))
    resolve_unresolved(page, stack, patient["id"])
    url = page.url
    page.evaluate("window.__marker = 1")
    publish_spo2(stack, device, 85)
    found = row(page, patient["id"])
    expect(found).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(found.locator(".wl-status .pill")).to_have_text("Rød")
    expect(found.locator(".wl-why .why")).to_contain_text(
        "SpO2 85 % er under den røde grænse 88 %", timeout=WAIT_MS)
    expect(found.locator(".acting")).to_have_text("Din organisation skal handle")
    expect(page.locator("#worklist tbody").first).to_have_attribute(
        "data-patient", patient["id"], timeout=WAIT_MS)  # the newest red comes first
    expect(page.locator("html")).to_have_attribute("data-red-notified", re.compile(r"\d+"))
    assert page.url == url
    assert page.evaluate("window.__marker") == 1, "the work list reloaded or navigated"


def test_a_user_outside_the_care_team_never_sees_the_patients_alert(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    hidden_device, hidden = device_of(stack, "Poul Test Nielsen")
    shown_device, shown = device_of(stack, "Jørgen Test Pedersen")
    assert "hosp-lung" not in hidden["care_team"] and "hosp-lung" in shown["care_team"]
    nurse, doctor = new_page(), new_page()
    open_dashboard(nurse, stack, member_of(stack, hidden, "municipality"))
    open_dashboard(doctor, stack, "doctor.hospital")
    requested: list[str] = []
    doctor.on("request", lambda request: requested.append(request.url))
    publish_spo2(stack, hidden_device, 80)
    publish_spo2(stack, shown_device, 81)
    # The care team's nurse is shown the first alert, so it exists and was pushed live ...
    expect(row(nurse, hidden["id"]).locator(".wl-why")).to_contain_text(
        "SpO2 80 %", timeout=WAIT_MS)
    # ... and events reach a screen in order, so the doctor seeing the second one proves
    # the first one was never sent there; nor did the doctor's page ask for that row.
    expect(row(doctor, shown["id"]).locator(".wl-why")).to_contain_text(
        "SpO2 81 %", timeout=WAIT_MS)
    expect(row(doctor, hidden["id"])).to_have_count(0)
    assert not [url for url in requested if hidden["id"] in url]


def test_pages_are_danish_by_default_and_switch_to_english(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    page = new_page()  # a Danish browser; select_locale() honours Accept-Language
    page.goto(f"{stack.base_url}/login")
    expect_language(page, "da", {"main h1": "Log ind", "label[for=username]": "Brugernavn"})
    page.click("a.lang")
    expect_language(page, "en", {"main h1": "Log in", "label[for=password]": "Password"})
    page.click("a.lang")
    expect_language(page, "da", {"main h1": "Log ind"})
    open_dashboard(page, stack, "nurse.boestrup")
    expect_language(page, "da", {"main h1": "Arbejdsliste",
                                 "#worklist thead th:nth-child(3)": "Hvorfor"})
    page.goto(f"{stack.base_url}/?lang=en")
    expect_language(page, "en", {"main h1": "Work list",
                                 "#worklist thead th:nth-child(3)": "Why"})


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    submit_login(page, stack, "nurse.aalby", "not-the-password")
    expect(page.locator("p.error[role=alert]")).to_have_text(
        "Forkert brugernavn eller adgangskode.", timeout=WAIT_MS
    )
    expect(page).to_have_url(f"{stack.base_url}/login", timeout=WAIT_MS)
    expect(page.locator("#worklist")).to_have_count(0, timeout=WAIT_MS)


def test_every_request_the_page_makes_stays_on_the_servers_own_origin(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    requested: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_dashboard(page, stack, "gp.torvet")
    expect(page.locator("#worklist tbody")).not_to_have_count(0, timeout=WAIT_MS)
    origin = f"{stack.base_url}/"
    assert any(url.endswith("/static/vendor/socket.io.min.js") for url in requested)
    assert [url for url in requested if not url.startswith(origin)] == []
    assert sockets, "the work list opened no WebSocket"
    assert [url for url in sockets if not url.startswith(origin.replace("http", "ws", 1))] == []


def test_a_screen_that_reconnects_catches_up_on_what_it_missed(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, patient = device_of(stack, "Birthe Test Andersen")
    page = new_page()
    open_dashboard(page, stack, member_of(stack, patient, "municipality"))
    resolve_unresolved(page, stack, patient["id"])
    expect(row(page, patient["id"])).not_to_have_attribute("data-status", "red")
    page.context.set_offline(True)
    expect(page.locator('#live-state[data-state="reconnecting"]')).to_be_visible(timeout=WAIT_MS)
    publish_spo2(stack, device, 83)  # pushed while the screen is away: it never hears of it
    page.context.set_offline(False)
    expect(page.locator('#live-state[data-state="live"]')).to_be_visible(timeout=WAIT_MS)
    found = row(page, patient["id"])
    expect(found).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(found.locator(".wl-why .why")).to_contain_text("SpO2 83 %")
