"""Administration in headless Chromium: an administrator creates a nurse and deactivates her."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.browser

PASSWORD = "browser-test-secret"


def log_in(page: Page, stack: Stack, username: str, password: str,
           start: str = "/") -> None:
    """Log in through the form in English and wait for the user's start page."""
    page.goto(f"{stack.base_url}/language/en?next=/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}{start}")


def test_an_administrator_creates_a_nurse_and_deactivates_her(stack: Stack, new_page) -> None:
    username = f"nurse.{uuid.uuid4().hex[:8]}"
    admin = new_page()
    log_in(admin, stack, "admin", stack.user("admin")["password"], "/admin/users")
    admin.click('nav.mainnav a[href="/admin/users"]')
    expect(admin).to_have_url(f"{stack.base_url}/admin/users")

    form = admin.locator("#add-user")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=name]").fill("Sygeplejerske Browser")
    form.locator("select[name=role]").select_option("nurse")
    form.locator("select[name=organization]").select_option("muni-aalby")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    expect(admin.locator("p.flash")).to_contain_text(f"User {username} added.")
    row = admin.locator(f'tr[data-user="{username}"]')
    expect(row.locator("td.active")).to_have_text("Yes")

    nurse = new_page()
    log_in(nurse, stack, username, PASSWORD)
    aalby = [p["id"] for p in stack.fixture["patients"] if "muni-aalby" in p["care_team"]]
    expect(nurse.locator("#worklist tbody[data-patient]")).to_have_count(len(aalby))
    for patient_id in aalby:
        expect(nurse.locator(f'#worklist tbody[data-patient="{patient_id}"]')).to_be_visible()

    row.locator("button.deactivate").click()
    expect(admin.locator("p.flash")).to_contain_text(f"User {username} deactivated.")
    expect(admin.locator(f'tr[data-user="{username}"] td.active')).to_have_text("No")

    nurse.reload()
    expect(nurse).to_have_url(re.compile(re.escape(f"{stack.base_url}/login")))
    expect(nurse.locator("#username")).to_be_visible()
