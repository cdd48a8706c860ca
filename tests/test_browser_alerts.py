"""The alert work list in headless Chromium: one nurse acts, the care team sees it live.

Both database backends through the `stack` fixture; no sleeps: every wait is Playwright's
auto-waiting on something the page shows, and "never received" is proved with a sentinel
(events reach a screen in order, see tests/test_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack
from tests.test_browser import (
    device_of,
    member_of,
    open_dashboard,
    publish_spo2,
)

pytestmark = pytest.mark.browser


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


def newest_alert_id(page: Page, stack: Stack, patient_id: str) -> int:
    """Return the id of the patient's newest alert the page's user may see."""
    alerts = api(page, stack, "GET", "/api/alerts?since=0&limit=5000")
    return max(a["id"] for a in alerts if a["patient"]["id"] == patient_id)


def item(page: Page, alert_id: int) -> Locator:
    """Return the alert's item in the work list (open or recently resolved)."""
    return page.locator(f'li.alert[data-alert="{alert_id}"]')


def resolve_unresolved(page: Page, stack: Stack, patient_id: str) -> None:
    """Resolve the patient's unresolved alerts so that the next reading opens a new one."""
    for alert in api(page, stack, "GET", "/api/alerts?since=0&limit=5000"):
        if alert["patient"]["id"] == patient_id and alert["status"] != "resolved":
            api(page, stack, "POST", f"/api/alerts/{alert['id']}/resolve")


def test_a_nurse_acknowledges_a_red_alert_and_the_gp_sees_it_live_read_only(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, patient = device_of(stack, "Erik Test Christensen")  # muni-boestrup, gp-torvet
    sentinel_device, sentinel = device_of(stack, "Jørgen Test Pedersen")
    outsider_name = "doctor.hospital"
    assert "hosp-lung" not in patient["care_team"] and "hosp-lung" in sentinel["care_team"]
    nurse_name, gp_name = member_of(stack, patient, "municipality"), member_of(stack, patient, "gp")
    nurse, gp, outsider = new_page(), new_page(), new_page()
    open_dashboard(nurse, stack, nurse_name)
    resolve_unresolved(nurse, stack, patient["id"])
    open_dashboard(gp, stack, gp_name)
    open_dashboard(outsider, stack, outsider_name)
    for entry in api(gp, stack, "GET", "/api/inbox"):  # start from an empty inbox
        if not entry["read"]:
            api(gp, stack, "POST", f"/api/inbox/{entry['id']}/read")
    gp.evaluate("window.__marker = 1")

    publish_spo2(stack, device, 84)
    alert_id = newest_alert_id(nurse, stack, patient["id"])
    on_nurse, on_gp = item(nurse, alert_id), item(gp, alert_id)

    # The nurse's organisation must act: highlighted, with buttons, and a red-alert signal.
    expect(on_nurse).to_have_attribute("data-status", "open", timeout=WAIT_MS)
    expect(on_nurse).to_have_class(re.compile(r"\balert red\b"), timeout=WAIT_MS)
    expect(on_nurse.locator(".reason")).to_contain_text("SpO2 84 %", timeout=WAIT_MS)
    expect(on_nurse.locator(".responsible")).to_contain_text(
        "Ansvarlig: Hjemmesygeplejen, Bøstrup Kommune", timeout=WAIT_MS)
    expect(on_nurse.locator(".must-act")).to_have_text("Din organisation skal handle")
    expect(nurse.locator("html")).to_have_attribute("data-red-notified", "1", timeout=WAIT_MS)
    # The GP sees the same alert read-only, is not alarmed, and is told in the inbox.
    expect(on_gp).to_have_attribute("data-status", "open", timeout=WAIT_MS)
    expect(on_gp).to_have_attribute("data-mine", "false")
    expect(on_gp.locator("button")).to_have_count(0)
    expect(on_gp.locator(".read-only")).to_be_visible()
    expect(gp.locator("#inbox-badge")).to_have_text("Indbakke (1)", timeout=WAIT_MS)
    inbox_item = gp.locator(f'#inbox-items li[data-alert="{alert_id}"]')
    expect(inbox_item).to_have_class(re.compile(r"\bunread\b"), timeout=WAIT_MS)

    on_nurse.locator("button.act.acknowledge").click()
    on_nurse.locator("textarea[name=note]").fill("Ringer til borgeren")
    on_nurse.locator("textarea[name=patient_message]").fill("Vi ringer til dig i dag.")
    on_nurse.locator("button.act.confirm").click()

    expect(on_nurse).to_have_attribute("data-status", "acknowledged", timeout=WAIT_MS)
    expect(on_gp).to_have_attribute("data-status", "acknowledged", timeout=WAIT_MS)
    expect(on_gp.locator(".acknowledged-by")).to_contain_text(
        re.compile(r"Kvitteret af .+: Ringer til borgeren"), timeout=WAIT_MS)
    expect(on_gp.locator(".acknowledged-by")).to_contain_text("Lars Bro")
    expect(on_gp.locator("button")).to_have_count(0)
    assert gp.evaluate("window.__marker") == 1, "the GP's dashboard reloaded"
    assert gp.locator("html").get_attribute("data-red-notified") is None

    # Marking the inbox item read empties the badge.
    inbox_item.locator("button.mark-read").click()
    expect(gp.locator("#inbox-badge")).to_have_text("Indbakke (0)", timeout=WAIT_MS)

    # Events reach a screen in order: the outsider seeing a later alert of their own
    # patient proves neither the new alert nor its acknowledgement was sent to them.
    publish_spo2(stack, sentinel_device, 83)
    later = newest_alert_id(outsider, stack, sentinel["id"])
    expect(item(outsider, later).locator(".reason")).to_contain_text("SpO2 83 %", timeout=WAIT_MS)
    expect(outsider.locator(f'[data-alert="{alert_id}"]')).to_have_count(0)
    expect(outsider.locator(f'#patients tr[data-patient="{patient["id"]}"]')).to_have_count(0)
    assert outsider.locator("html").get_attribute("data-red-notified") is None


def test_the_work_list_puts_red_first_then_the_oldest_and_patients_by_status(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    yellow_device, yellow_patient = device_of(stack, "Inge Test Hansen")  # muni-boestrup
    red_device, red_patient = device_of(stack, "Jørgen Test Pedersen")  # muni-boestrup
    nurse = new_page()
    open_dashboard(nurse, stack, member_of(stack, yellow_patient, "municipality"))
    resolve_unresolved(nurse, stack, yellow_patient["id"])
    publish_spo2(stack, yellow_device, 90)  # yellow for the demo limits (88-91 %), older
    publish_spo2(stack, red_device, 82)  # red, newer
    yellow = newest_alert_id(nurse, stack, yellow_patient["id"])
    red = newest_alert_id(nurse, stack, red_patient["id"])
    expect(item(nurse, yellow)).to_have_class(re.compile(r"\balert yellow\b"), timeout=WAIT_MS)
    expect(item(nurse, red).locator(".reason")).to_contain_text("SpO2 82 %", timeout=WAIT_MS)
    order = nurse.locator("#alerts > li").evaluate_all(
        "items => items.map(li => [li.dataset.severity, Number(li.dataset.alert),"
        " li.querySelector('time').getAttribute('datetime')])")
    rank = {"red": 0, "yellow": 1, "blue": 2}
    keys = [(rank[severity], created) for severity, _, created in order]
    assert keys == sorted(keys), order
    ids = [alert_id for _, alert_id, _ in order]
    assert ids.index(red) < ids.index(yellow)
    # Patients: red, yellow, blue, green.
    rows = nurse.locator("#patients tbody tr")
    expect(nurse.locator(f'#patients tr[data-patient="{yellow_patient["id"]}"]')).to_have_attribute(
        "data-status", "yellow", timeout=WAIT_MS)
    expect(nurse.locator(f'#patients tr[data-patient="{red_patient["id"]}"]')).to_have_attribute(
        "data-status", "red", timeout=WAIT_MS)
    statuses = rows.evaluate_all("rows => rows.map(r => r.dataset.status)")
    order_rank = {"red": 0, "yellow": 1, "blue": 2, "green": 3}
    assert statuses == sorted(statuses, key=order_rank.__getitem__), statuses
    # Resolving moves the alert into the collapsed "recently resolved" list.
    item(nurse, yellow).locator("button.act.resolve").click()
    expect(nurse.locator(f'#resolved-alerts li[data-alert="{yellow}"]')).to_have_count(
        1, timeout=WAIT_MS)
    expect(nurse.locator(f'#alerts li[data-alert="{yellow}"]')).to_have_count(0)
    expect(nurse.locator("#resolved")).not_to_have_attribute("open", "")
