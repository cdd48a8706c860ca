"""The charts of readings over time in headless Chromium against a running stack.

The demo has no history, so the test makes its own: a week of readings sent by the patient's
hub as one buffered upload, limits for blood pressure set by the treating doctor, a red SpO2
reading that raises an alert, and its acknowledgement. What the chart script drew is read
from the data- attributes it writes onto each canvas.
"""

from __future__ import annotations

import json
import queue
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack, StatusListener
from tests.test_browser import device_of, submit_login

pytestmark = pytest.mark.browser

SVEND = "Svend Test Mortensen"  # the hospital monitors and treats him: its doctor acts
DOCTOR = "doctor.hospital"
BP_LIMITS = {"bp_sys": {"red_low": 91, "yellow_low": 100, "yellow_high": 155, "red_high": 180},
             "bp_dia": {"yellow_low": 60, "yellow_high": 90, "red_high": 110}}  # not the defaults
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def week_of_readings(now: datetime) -> list[tuple[datetime, dict[str, float]]]:
    """Return steady readings twice a day for 8 days, then a high systolic and a red SpO2.

    Day 6 holds an SpO2 of 100 % and a failed FEV1 blow of 0.15 L: padded naively,
    their axes would run above 100 % and below 0 L.
    """
    rows: list[tuple[datetime, dict[str, float]]] = []
    for day in range(8, 0, -1):
        for hours, spo2 in ((0, 95), (9, 100 if day == 6 else 96)):
            rows.append((now - day * DAY - hours * HOUR, {"spo2": spo2}))
        rows.append((now - day * DAY - 2 * HOUR, {
            "bp_sys": 135, "bp_dia": 80, "fev1": 0.15 if day == 6 else 1.95 + day % 2 / 20,
            "weight": 72.0}))
    return [*rows, (now - 3 * HOUR, {"spo2": 95, "bp_sys": 172, "bp_dia": 85}),
            (now - HOUR, {"spo2": 84})]


def upload(stack: Stack, device: dict[str, Any],
           rows: list[tuple[datetime, dict[str, float]]]) -> None:
    """Send the readings as one buffered hub upload and wait until every one is accepted."""
    body = [{"msg_id": f"chart-{uuid.uuid4().hex}", "taken_at": at.isoformat(timespec="seconds"),
             "readings": [{"code": code, "value": value} for code, value in values.items()]}
            for at, values in rows]
    listener = StatusListener(stack, device)
    try:
        result = stack.mosquitto_pub(device, json.dumps(body))
        assert result.returncode == 0, result.stderr
        waiting = {item["msg_id"] for item in body}
        deadline = time.monotonic() + WAIT_MS / 1000
        while waiting:
            status = listener.messages.get(timeout=max(deadline - time.monotonic(), 0.1))
            if status.get("msg_id") in waiting:
                assert status["result"] == "accepted", status
                waiting.discard(status["msg_id"])
    except queue.Empty:
        pytest.fail(f"no status for {len(waiting)} of the uploaded readings")
    finally:
        listener.close()


def api(stack: Stack, method: str, path: str, **kwargs: Any) -> Any:
    """Call the JSON API as the treating doctor and return the answer's JSON."""
    headers = {"Authorization": f"Bearer {stack.token(DOCTOR)}"}
    response = requests.request(method, f"{stack.base_url}{path}", headers=headers, timeout=20,
                                **kwargs)
    assert response.ok, (response.status_code, response.text)
    return response.json()


def set_blood_pressure_limits(stack: Stack, patient_id: str) -> None:
    """Put the blood pressure limits into the care plan, as the treating doctor does."""
    plan = api(stack, "GET", f"/api/patients/{patient_id}/care-plan")
    content = plan["content"]
    content["thresholds"] = {**content["thresholds"], **BP_LIMITS}
    api(stack, "PUT", f"/api/patients/{patient_id}/care-plan",
        json={"base_version": plan["version"], "content": content})


def acknowledge_the_red_spo2_alert(stack: Stack, patient_id: str) -> int:
    """Acknowledge the patient's open red SpO2 alert; return its id."""
    alerts = api(stack, "GET", "/api/alerts?since=0&limit=5000")
    alert = next(a for a in alerts if a["patient"]["id"] == patient_id
                 and a["rule"] == "threshold:spo2" and a["status"] == "open")
    api(stack, "POST", f"/api/alerts/{alert['id']}/acknowledge", json={})
    return int(alert["id"])


@pytest.fixture(scope="module")
def svend(stack: Stack) -> dict[str, Any]:
    """Give Svend blood pressure limits and a week of readings ending in a red SpO2 (once)."""
    device, patient = device_of(stack, SVEND)
    set_blood_pressure_limits(stack, patient["id"])
    upload(stack, device, week_of_readings(datetime.now(UTC)))
    patient["acknowledged"] = acknowledge_the_red_spo2_alert(stack, patient["id"])
    return patient


def drawn(page: Page, code: str) -> dict[str, Any]:
    """Wait until the chart of `code` is drawn; return what its script says it drew."""
    canvas = page.locator(f'canvas[data-chart="{code}"]')
    expect(canvas).to_have_attribute("data-lines", re.compile("^{"), timeout=WAIT_MS)
    return {"lines": json.loads(canvas.get_attribute("data-lines") or "{}"),
            "x_min": canvas.get_attribute("data-x-min"),
            "drawn": canvas.get_attribute("data-drawn")}


def open_patient(page: Page, stack: Stack, patient: dict[str, Any], query: str) -> None:
    """Log in as the treating doctor and open the patient's page."""
    submit_login(page, stack, DOCTOR, stack.user(DOCTOR)["password"])
    expect(page).to_have_url(f"{stack.base_url}/", timeout=WAIT_MS)
    page.goto(f"{stack.base_url}/patients/{patient['id']}{query}")
    expect(page.locator("#patient-name")).to_have_text(SVEND, timeout=WAIT_MS)


def test_the_charts_show_limits_baseline_and_alerts_and_a_day_shows_only_the_last_day(
    stack: Stack, new_page: Callable[[], Page], svend: dict[str, Any]
) -> None:
    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_patient(page, stack, svend, "?days=7")

    bp = drawn(page, "bp")["lines"]
    assert bp["bp_sys"]["bands"] >= 1 and bp["bp_dia"]["bands"] >= 1, bp
    assert bp["bp_sys"]["bottom"] <= bp["bp_dia"]["top"], "systolic is drawn above diastolic"
    assert bp["bp_sys"]["alerts"] >= 1 and bp["bp_dia"]["alerts"] == 0  # 172 is above 155

    spo2 = drawn(page, "spo2")["lines"]["spo2"]
    assert spo2["baseline"] >= 10 and spo2["alerts"] >= 1 and spo2["acknowledged"] == 1, spo2
    assert spo2["y_max"] <= 100 and spo2["bands"] == 2
    assert drawn(page, "fev1")["lines"]["fev1"]["y_min"] >= 0
    assert drawn(page, "weight")["lines"]["weight"]["y_min"] >= 0
    marks = page.locator('ul.chart-alerts[data-code="spo2"] '
                         f'li[data-alert="{svend["acknowledged"]}"]')
    expect(marks).to_contain_text("Rød alarm: uden for en grænseværdi", timeout=WAIT_MS)
    expect(marks).to_contain_text("kvitteret", timeout=WAIT_MS)

    page.locator('.period a[data-days="1"]').click()
    expect(page).to_have_url(re.compile(r"\?days=1#readings$"), timeout=WAIT_MS)
    day = drawn(page, "spo2")
    started = datetime.fromisoformat((day["x_min"] or "").replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - DAY - started) < 5 * timedelta(minutes=1)
    assert day["drawn"] == "2"  # 95 three hours ago and 84 an hour ago; the rest is older
    rows = page.locator('table.readings-table[data-code="spo2"] tbody tr')
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    expect(rows.first.locator("td").nth(1)).to_have_text("84 %", timeout=WAIT_MS)
    assert errors == []


def test_the_readings_fit_a_phone_and_work_without_javascript(
    stack: Stack, browser: Browser, svend: dict[str, Any]
) -> None:
    context = browser.new_context(locale="da-DK", viewport={"width": 390, "height": 800})
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        open_patient(page, stack, svend, "?days=7")
        drawn(page, "bp")
        box = page.evaluate("""() => {
            const block = document.getElementById('readings');
            return {right: block.getBoundingClientRect().right, width: window.innerWidth,
                    scroll: block.scrollWidth, client: block.clientWidth,
                    canvases: [...block.querySelectorAll('canvas')].map(
                        (c) => c.getBoundingClientRect().right)};
        }""")
        assert box["right"] <= box["width"] and box["scroll"] <= box["client"], box
        assert max(box["canvases"]) <= box["right"], box
    finally:
        context.close()

    plain = browser.new_context(locale="da-DK", java_script_enabled=False)
    plain.set_default_timeout(WAIT_MS)
    try:
        page = plain.new_page()
        open_patient(page, stack, svend, "")
        page.locator('.period a[data-days="3"]').click()
        expect(page).to_have_url(re.compile(r"\?days=3#readings$"), timeout=WAIT_MS)
        expect(page.locator('.period a[aria-current="true"]')).to_have_text("72 timer")
        expect(page.locator('table.readings-table[data-code="bp"] tbody tr').first
               ).to_contain_text("172/85 mmHg")
        expect(page.locator('p.limits[data-line="bp_dia"]')).to_contain_text("gul over 90 mmHg")
    finally:
        plain.close()
