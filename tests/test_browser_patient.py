"""The patient page and the patient's own pages in headless Chromium against a running stack."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack
from tests.test_browser import device_of, open_dashboard, publish_spo2, submit_login

pytestmark = pytest.mark.browser

KAREN = "Karen Test Jensen"




def expect_chart(page: Page, code: str, reading: str) -> None:
    """Expect a drawn chart of `code` and its table listing `reading`."""
    expect(page.locator(f'canvas[data-chart="{code}"]')).to_have_attribute(
        "data-drawn", re.compile(r"^[1-9]\d*$"), timeout=WAIT_MS)
    table = page.locator(f'table.readings-table[data-code="{code}"]')
    expect(table.locator("td", has_text=re.compile(f"^{re.escape(reading)}$")).first
           ).to_be_visible(timeout=WAIT_MS)


def test_a_nurse_opens_a_patient_from_the_dashboard_and_sees_her_chart(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, karen = device_of(stack, KAREN)
    publish_spo2(stack, device, 94)
    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_dashboard(page, stack, "nurse.aalby")
    page.locator(f'#worklist tbody[data-patient="{karen["id"]}"] .wl-name a').click()
    expect(page).to_have_url(f"{stack.base_url}/patients/{karen['id']}", timeout=WAIT_MS)
    expect(page.locator("#patient-name")).to_have_text(KAREN, timeout=WAIT_MS)
    expect(page.locator('[data-part="monitoring"]')).to_have_text(
        "Hjemmesygeplejen, Aalby Kommune", timeout=WAIT_MS)
    expect(page.locator('.patient-tabs a[data-tab="overview"]')).to_have_attribute(
        "aria-current", "page", timeout=WAIT_MS)
    expect_chart(page, "spo2", "94 %")
    assert errors == []


def test_karen_sees_her_readings_her_plan_and_who_has_looked_at_her_data(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    device, karen = device_of(stack, KAREN)
    publish_spo2(stack, device, 93)
    nurse = new_page()
    open_dashboard(nurse, stack, "nurse.aalby")
    nurse.goto(f"{stack.base_url}/patients/{karen['id']}")
    expect(nurse.locator("#patient-name")).to_have_text(KAREN, timeout=WAIT_MS)

    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    submit_login(page, stack, "patient.karen", stack.user("patient.karen")["password"])
    expect(page).to_have_url(f"{stack.base_url}/me", timeout=WAIT_MS)
    expect(page.locator("#my-status h1")).to_contain_text("Karen", timeout=WAIT_MS)
    expect_chart(page, "spo2", "93 %")
    page.locator('.period a[data-days="7"]').click()
    expect(page).to_have_url(re.compile(r"/me\?days=7"), timeout=WAIT_MS)
    expect_chart(page, "spo2", "93 %")

    page.locator('.mainnav a[href="/me/plan"]').click()
    expect(page).to_have_url(f"{stack.base_url}/me/plan", timeout=WAIT_MS)
    expect(page.locator("#plan-version")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#plan-limits li[data-code=spo2]")).to_contain_text("88", timeout=WAIT_MS)

    page.locator('.mainnav a[href="/me/access-log"]').click()
    expect(page).to_have_url(f"{stack.base_url}/me/access-log", timeout=WAIT_MS)
    visit = page.locator("#access-log .access-person").filter(
        has=page.locator(".who", has_text="Sygeplejerske Mette Holm"))
    expect(visit.first).to_be_visible(timeout=WAIT_MS)
    expect(visit.first.locator(".organization")).to_have_text(
        "Hjemmesygeplejen, Aalby Kommune", timeout=WAIT_MS)
    expect(visit.first.locator(".what")).to_contain_text("så på dine personoplysninger",
                                                        timeout=WAIT_MS)
    assert errors == []
