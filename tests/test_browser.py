"""The clinician dashboard in headless Chromium against the whole running platform."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

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
    """Log in as `username` and wait until the dashboard is live and has caught up."""
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    # The catch-up fetch follows the Socket.IO connect: once it has answered, anything
    # shown later was pushed live, not loaded.
    try:
        with page.expect_response(lambda r: "/api/alerts" in r.url, timeout=WAIT_MS):
            submit_login(page, stack, username, stack.user(username)["password"])
    except PlaywrightTimeoutError:
        failed = [f"{r.status} {r.url}" for r in responses if r.status >= 400]
        pytest.fail(f"the dashboard never went live and caught up; failed requests: {failed}")
    expect(page).to_have_url(f"{stack.base_url}/", timeout=WAIT_MS)
    expect(page.locator('#live-state[data-state="live"]')).to_be_visible(timeout=WAIT_MS)


def publish_spo2(stack: Stack, device: dict[str, Any], spo2: float) -> None:
    """Publish one SpO2 reading with `mosquitto_pub` and wait until the gateway accepts it."""
    msg_id = f"browser-{uuid.uuid4().hex}"
    body = {
        "msg_id": msg_id,
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "readings": [{"code": "spo2", "value": spo2, "unit": "%"}],
    }
    listener = StatusListener(stack, device)
    try:
        result = stack.mosquitto_pub(device, json.dumps(body))
        assert result.returncode == 0, result.stderr
        assert listener.wait_for(msg_id)["result"] == "accepted"
    finally:
        listener.close()


def alerts_for(page: Page, name: str) -> Locator:
    """Return the alert list items naming patient `name`."""
    name_only = re.compile(f"^{re.escape(name)}$")
    return page.locator("#alerts li[data-alert]").filter(
        has=page.locator("strong", has_text=name_only)
    )


def newest_alert(page: Page, stack: Stack, patient_id: str) -> Locator:
    """Return the list item for the patient's newest alert, as the page's user may see it."""
    response = page.request.get(f"{stack.base_url}/api/alerts?since=0&limit=5000")
    assert response.ok, response.status
    alert_id = max(a["id"] for a in response.json() if a["patient"]["id"] == patient_id)
    return page.locator(f'#alerts li.alert[data-alert="{alert_id}"]')


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
    url = page.url
    page.evaluate("window.__marker = 1")
    publish_spo2(stack, device, 85)
    alert = newest_alert(page, stack, patient["id"])
    expect(alert).to_have_class(re.compile(r"\balert red\b"), timeout=WAIT_MS)
    expect(alert.locator("strong")).to_have_text(patient["name"], timeout=WAIT_MS)
    expect(alert.locator(".reason")).to_contain_text(
        "SpO2 85 % is below the red limit 88 %", timeout=WAIT_MS
    )
    spo2 = page.locator(f'#patients tbody tr[data-patient="{patient["id"]}"] td[data-code="spo2"]')
    expect(spo2).to_have_text("85 %", timeout=WAIT_MS)
    expect(spo2).to_have_class(re.compile(r"\bred\b"), timeout=WAIT_MS)
    assert page.url == url
    assert page.evaluate("window.__marker") == 1, "the dashboard reloaded or navigated"


def test_a_user_outside_the_care_team_never_sees_the_patients_alert(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    hidden_device, hidden = device_of(stack, "Poul Test Nielsen")
    shown_device, shown = device_of(stack, "Jørgen Test Pedersen")
    assert "hosp-lung" not in hidden["care_team"] and "hosp-lung" in shown["care_team"]
    nurse, doctor = new_page(), new_page()
    open_dashboard(nurse, stack, member_of(stack, hidden, "municipality"))
    open_dashboard(doctor, stack, "doctor.hospital")
    publish_spo2(stack, hidden_device, 80)
    publish_spo2(stack, shown_device, 81)
    # The care team's nurse is shown the first alert, so it exists and was pushed live ...
    expect(newest_alert(nurse, stack, hidden["id"])).to_contain_text("SpO2 80 %", timeout=WAIT_MS)
    # ... and events reach a screen in order, so the doctor seeing the second one proves
    # the first one was never sent there.
    sentinel = newest_alert(doctor, stack, shown["id"])
    expect(sentinel).to_contain_text("SpO2 81 %", timeout=WAIT_MS)
    assert alerts_for(doctor, hidden["name"]).count() == 0
    hidden_row = doctor.locator(f'#patients tr[data-patient="{hidden["id"]}"]')
    expect(hidden_row).to_have_count(0, timeout=WAIT_MS)


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
    alerts = re.compile(r"^Alarmer\b")
    expect_language(page, "da", {"main h1": "Mine patienter", ".alerts-card h2": alerts})
    page.goto(f"{stack.base_url}/?lang=en")
    alerts = re.compile(r"^Alerts\b")
    expect_language(page, "en", {"main h1": "My patients", ".alerts-card h2": alerts})


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    submit_login(page, stack, "nurse.aalby", "not-the-password")
    expect(page.locator("p.error[role=alert]")).to_have_text(
        "Forkert brugernavn eller adgangskode.", timeout=WAIT_MS
    )
    expect(page).to_have_url(f"{stack.base_url}/login", timeout=WAIT_MS)
    expect(page.locator("#alerts")).to_have_count(0, timeout=WAIT_MS)


def test_every_request_the_page_makes_stays_on_the_servers_own_origin(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    requested: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_dashboard(page, stack, "gp.torvet")
    expect(page.locator("#patients tbody tr")).not_to_have_count(0, timeout=WAIT_MS)
    origin = f"{stack.base_url}/"
    assert any(url.endswith("/static/vendor/socket.io.min.js") for url in requested)
    assert [url for url in requested if not url.startswith(origin)] == []
    assert sockets, "the dashboard opened no WebSocket"
    assert [url for url in sockets if not url.startswith(origin.replace("http", "ws", 1))] == []
