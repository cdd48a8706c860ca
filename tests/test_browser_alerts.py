"""The triage work list in headless Chromium: one nurse acts, the care team sees it live.

Both database backends through the `stack` fixture; no sleeps: every wait is Playwright's
auto-waiting on something the page shows, and "never received" is proved with a sentinel
(events reach a screen in order, see tests/test_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack
from tests.test_browser import (
    api,
    device_of,
    member_of,
    open_dashboard,
    publish_readings,
    publish_spo2,
    resolve_unresolved,
    row,
    submit_login,
)

pytestmark = pytest.mark.browser


def newest_alert_id(page: Page, stack: Stack, patient_id: str) -> int:
    """Return the id of the patient's newest alert the page's user may see."""
    alerts = api(page, stack, "GET", "/api/alerts?since=0&limit=5000")
    return max(a["id"] for a in alerts if a["patient"]["id"] == patient_id)


def item(page: Page, alert_id: int) -> Locator:
    """Return the alert's entry under its patient's row (the row's details opened)."""
    inner = f'li.alert-item[data-alert="{alert_id}"]'
    details = page.locator("#worklist details.alert-group", has=page.locator(inner))
    expect(details).to_have_count(1, timeout=WAIT_MS)
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    return page.locator(f"#worklist {inner}")


def background(locator: Locator) -> str:
    """Return the computed background colour of an element."""
    return str(locator.evaluate("node => getComputedStyle(node).backgroundColor"))


def test_a_nurse_acknowledges_a_red_alert_and_the_gp_sees_it_live_read_only(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, patient = device_of(stack, "Erik Test Christensen")  # muni-boestrup, gp-torvet
    sentinel_device, sentinel = device_of(stack, "Jørgen Test Pedersen")
    assert "hosp-lung" not in patient["care_team"] and "hosp-lung" in sentinel["care_team"]
    nurse_name, gp_name = member_of(stack, patient, "municipality"), member_of(stack, patient, "gp")
    nurse, gp, outsider = new_page(), new_page(), new_page()
    open_dashboard(nurse, stack, nurse_name)
    resolve_unresolved(nurse, stack, patient["id"])
    open_dashboard(gp, stack, gp_name)
    open_dashboard(outsider, stack, "doctor.hospital")
    for entry in api(gp, stack, "GET", "/api/inbox"):  # start from an empty inbox
        if not entry["read"]:
            api(gp, stack, "POST", f"/api/inbox/{entry['id']}/read")
    gp.reload()
    expect(gp.locator('#live-state[data-state="live"]')).to_be_visible(timeout=WAIT_MS)
    gp.evaluate("window.__marker = 1")

    publish_spo2(stack, device, 84)
    on_nurse, on_gp = row(nurse, patient["id"]), row(gp, patient["id"])
    # The nurse's organisation must act: a red row saying so, and a red-alert signal.
    expect(on_nurse).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(on_nurse.locator(".acting")).to_have_text("Din organisation skal handle")
    expect(nurse.locator("html")).to_have_attribute("data-red-notified", re.compile(r"\d+"))
    # The GP sees the same, read-only, is not alarmed, and is told in the inbox.
    expect(on_gp).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(on_gp).to_have_attribute("data-mine", "false")
    expect(on_gp.locator(".acting")).to_have_text("Hjemmesygeplejen, Bøstrup Kommune skal handle")
    expect(on_gp.locator("form")).to_have_count(0)
    expect(gp.locator("#inbox-badge")).to_have_text("Indbakke (1)", timeout=WAIT_MS)
    inbox_item = gp.locator("#inbox-items li.unread")
    expect(inbox_item).to_contain_text("SpO2 84 % er under den røde grænse 88 %")

    alert = item(nurse, newest_alert_id(nurse, stack, patient["id"]))
    form = alert.locator('form[action$="/acknowledge"]')
    form.locator("input[name=note]").fill("Ringer til patienten")
    form.locator("button[type=submit]").click()

    expect(on_nurse.locator(".acting")).to_contain_text("Kvitteret af Sygeplejerske Lars Bro",
                                                     timeout=WAIT_MS)
    expect(on_gp.locator(".acting")).to_contain_text("Kvitteret af Sygeplejerske Lars Bro",
                                                  timeout=WAIT_MS)
    expect(on_gp).to_have_attribute("data-status", "red")  # still red: acknowledged, not over
    assert gp.evaluate("window.__marker") == 1, "the GP's work list reloaded"
    assert gp.locator("html").get_attribute("data-red-notified") is None

    inbox_item.locator("button").click()
    expect(gp.locator("#inbox-badge")).to_have_text("Indbakke (0)", timeout=WAIT_MS)

    # Events reach a screen in order: the outsider seeing a later alert of their own
    # patient proves neither the new alert nor its acknowledgement was sent to them.
    publish_spo2(stack, sentinel_device, 83)
    expect(row(outsider, sentinel["id"]).locator(".wl-why")).to_contain_text(
        "SpO2 83 %", timeout=WAIT_MS)
    expect(row(outsider, patient["id"])).to_have_count(0)
    assert outsider.locator("html").get_attribute("data-red-notified") is None


def test_red_and_yellow_look_different_say_why_in_danish_and_red_comes_first(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    yellow_device, yellow_patient = device_of(stack, "Inge Test Hansen")  # muni-boestrup
    red_device, red_patient = device_of(stack, "Jørgen Test Pedersen")  # muni-boestrup
    nurse = new_page()
    open_dashboard(nurse, stack, member_of(stack, yellow_patient, "municipality"))
    resolve_unresolved(nurse, stack, yellow_patient["id"])
    resolve_unresolved(nurse, stack, red_patient["id"])
    publish_spo2(stack, yellow_device, 90)  # yellow for the demo limits (88-91 %), older
    publish_spo2(stack, red_device, 82)  # red, newer
    yellow, red = row(nurse, yellow_patient["id"]), row(nurse, red_patient["id"])
    expect(yellow).to_have_attribute("data-status", "yellow", timeout=WAIT_MS)
    expect(red).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(yellow.locator(".wl-status .pill")).to_have_text("Gul")
    expect(red.locator(".wl-status .pill")).to_have_text("Rød")
    expect(yellow.locator(".wl-why .why")).to_contain_text(
        "SpO2 90 % er under den gule grænse 92 %")
    expect(red.locator(".wl-why .why")).to_contain_text("SpO2 82 % er under den røde grænse 88 %")
    assert background(yellow.locator(".wl-status .pill")) != background(
        red.locator(".wl-status .pill"))
    statuses = nurse.locator("#worklist tbody").evaluate_all(
        "rows => rows.map(r => r.dataset.status)")
    rank = {"red": 0, "yellow": 1, "blue": 2, "green": 3, "paused": 4}
    assert statuses == sorted(statuses, key=rank.__getitem__), statuses
    # Resolving the yellow alert from its row makes the patient green again.
    alert = item(nurse, newest_alert_id(nurse, stack, yellow_patient["id"]))
    alert.locator('form[action$="/resolve"] button[type=submit]').click()
    expect(yellow).to_have_attribute("data-status", "green", timeout=WAIT_MS)


def test_all_of_a_patients_alerts_are_acknowledged_at_once_with_one_note(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, patient = device_of(stack, "Birthe Test Andersen")  # muni-aalby
    nurse = new_page()
    open_dashboard(nurse, stack, member_of(stack, patient, "municipality"))
    resolve_unresolved(nurse, stack, patient["id"])
    publish_spo2(stack, device, 84)  # red, then a yellow of another rule
    publish_readings(stack, device, {"pulse": 112})
    found = row(nurse, patient["id"])
    expect(found.locator("li.alert-item.yellow").first).to_be_attached(timeout=WAIT_MS)
    expect(found.locator("li.alert-item.red")).to_have_count(1)
    found.locator("details.alert-group summary").click()
    form = found.locator("form.ack-all")
    form.locator("textarea[name=note]").fill("Ringet op, kommer forbi i dag")
    form.locator("button[type=submit]").click()
    expect(found.locator("li.alert-item.open")).to_have_count(0, timeout=WAIT_MS)
    expect(found.locator(".acting")).to_contain_text("Kvitteret af Sygeplejerske Mette Holm")
    mine = [a for a in api(nurse, stack, "GET", "/api/alerts?since=0&limit=5000")
            if a["patient"]["id"] == patient["id"] and a["status"] != "resolved"]
    assert len(mine) >= 2  # SpO2 and pulse (and a NEWS2 from the two together)
    assert {(a["status"], a["note"]) for a in mine} == {
        ("acknowledged", "Ringet op, kommer forbi i dag")}



def test_the_patients_own_diary_with_worse_symptoms_alerts_her_nurse_live(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    _, karen = device_of(stack, "Karen Test Jensen")  # Aalby monitors her
    nurse, patient = new_page(), new_page()
    open_dashboard(nurse, stack, member_of(stack, karen, "municipality"))
    resolve_unresolved(nurse, stack, karen["id"])
    submit_login(patient, stack, "patient.karen", stack.user("patient.karen")["password"])
    patient.goto(f"{stack.base_url}/questionnaire/copd-symptoms")
    worse = {"more_breathless", "more_sputum"}
    for question in patient.locator("fieldset.question").all():
        name = question.locator("input[type=radio]").first.get_attribute("name") or ""
        # Click the answer's label: a large button on the patient's page.
        question.locator("label", has=patient.locator(
            f'input[value="{"yes" if name in worse else "no"}"]')).click()
    patient.locator("main form button[type=submit]").click()
    expect(patient.locator("main")).to_contain_text("Din sygeplejerske har fået besked",
                                                    timeout=WAIT_MS)
    found = row(nurse, karen["id"])
    expect(found).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(found.locator(".wl-why .why")).to_contain_text(
        "Patienten melder mere åndenød end normalt, mere slim end normalt", timeout=WAIT_MS)
    expect(found.locator(".acting")).to_have_text("Din organisation skal handle")
