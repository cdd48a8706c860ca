"""The non-digital route in headless Chromium: a nurse enters what a patient said on the phone.

Birthe Test Andersen (muni-aalby monitors, gp-skovvej treats) is used; her open alerts are
resolved first so that the entry opens a new one. No sleeps: Playwright waits for what the
pages show, and the dashboard is opened before the entry, so the alert on it came live.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack
from tests.test_browser import (
    api,
    device_of,
    open_dashboard,
    resolve_unresolved,
    row,
    submit_login,
)
from tests.test_browser_alerts import item

pytestmark = pytest.mark.browser

CAT_THREES = ("cough", "phlegm", "chest_tightness", "breathlessness", "activities",
              "confidence", "sleep", "energy")


def test_a_nurse_enters_a_telephone_spo2_and_a_cat_and_sees_colour_alert_and_score(
    stack: Stack, new_page: Callable[[], Page]
) -> None:
    _, patient = device_of(stack, "Birthe Test Andersen")
    dashboard = new_page()
    open_dashboard(dashboard, stack, "nurse.aalby")
    resolve_unresolved(dashboard, stack, patient["id"])
    dashboard.evaluate("window.__marker = 1")

    entry = new_page()  # the same nurse at a second screen
    submit_login(entry, stack, "nurse.aalby", stack.user("nurse.aalby")["password"])
    expect(entry).to_have_url(f"{stack.base_url}/", timeout=WAIT_MS)
    entry.goto(f"{stack.base_url}/patients/{patient['id']}/phone")
    form = entry.locator("#reading-form")
    form.locator("select[name=type]").select_option("spo2")
    form.locator("input[name=value]").fill("86")
    form.locator("input[name=method][value=telephone]").check()
    form.locator("button[type=submit]").click()

    result = entry.locator("#entry-result")
    expect(result).to_have_attribute("data-severity", "red", timeout=WAIT_MS)
    expect(result).not_to_have_attribute("data-alerts", "0")  # the limit's, maybe a baseline's
    expect(result).to_contain_text("SpO2 86 %")
    expect(result.locator(".entry-alerts li.alert.red").first).to_contain_text(
        "SpO2 86 % er under den røde grænse 88 %")

    threshold = max(a["id"] for a in api(dashboard, stack, "GET", "/api/alerts?since=0&limit=5000")
                    if a["patient"]["id"] == patient["id"] and a["rule"] == "threshold:spo2")
    alert = item(dashboard, threshold)
    expect(alert).to_have_class(re.compile(r"\balert-item red\b"), timeout=WAIT_MS)
    expect(alert.locator(".why")).to_contain_text("SpO2 86 %", timeout=WAIT_MS)
    expect(row(dashboard, patient["id"]).locator(".wl-name a")).to_have_text(patient["name"])
    assert dashboard.evaluate("window.__marker") == 1, "the dashboard reloaded"

    questionnaire = entry.locator("#questionnaire-form")
    for link_id in CAT_THREES:
        questionnaire.locator(f"input[name={link_id}][value='3']").check()
    questionnaire.locator("input[name=method][value=telephone]").check()
    questionnaire.locator("button[type=submit]").click()
    result = entry.locator("#entry-result")
    expect(result).to_have_attribute("data-kind", "cat", timeout=WAIT_MS)
    expect(result).to_have_attribute("data-score", "24")
    expect(result).to_contain_text("24")
