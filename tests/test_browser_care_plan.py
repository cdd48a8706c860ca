"""A threshold proposal travels from the municipal nurse to the GP and back, in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.browser

POUL = "Poul Test Nielsen"  # monitored by muni-aalby, treated by gp-torvet
REASON = "Puls i hvile ofte 105-110 uden symptomer (browsertest)"




def log_in(page: Page, stack: Stack, username: str) -> None:
    """Log in through the form and wait for the start page."""
    page.goto(f"{stack.base_url}/login")
    page.fill("#username", username)
    page.fill("#password", stack.user(username)["password"])
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/")


def open_plan(page: Page, stack: Stack, patient_id: str) -> None:
    """Open the patient's care plan page and wait until it listens for live changes."""
    page.goto(f"{stack.base_url}/patients/{patient_id}/plan")
    expect(page.locator('#care-plan[data-live="live"]')).to_have_count(1)


def test_a_threshold_proposal_travels_from_the_nurse_to_the_gp_and_back(
        stack: Stack, new_page: Callable[[], Page]) -> None:
    patient = next(p for p in stack.fixture["patients"] if p["name"] == POUL)
    gp_name = "Praktiserende læge Ole Berg"
    nurse = new_page()
    log_in(nurse, stack, "nurse.aalby")
    open_plan(nurse, stack, patient["id"])
    before = int(nurse.locator("#plan-version").get_attribute("data-version") or "0")

    # The nurse proposes new pulse limits; the form starts from the plan's (the programme's).
    nurse.select_option("#propose-measurement", "pulse")
    expect(nurse.locator("#propose-yellow_high")).to_have_value("100")
    for name, value in (("red_low", "40"), ("yellow_low", "50"), ("yellow_high", "115"),
                        ("red_high", "135")):
        nurse.fill(f"#propose-{name}", value)
    nurse.fill("#propose-reason", REASON)
    nurse.click("#propose-submit")
    mine = nurse.locator("#proposals li.proposal", has_text=REASON)
    expect(mine).to_have_attribute("data-status", "pending")
    proposal_id = mine.get_attribute("data-proposal")
    expect(nurse.locator('#care-plan[data-live="live"]')).to_have_count(1)

    # The GP sees it waiting (badge in the menu, proposals page) and approves it.
    gp = new_page()
    log_in(gp, stack, "gp.torvet")
    badge = gp.locator("#nav-proposals")
    expect(badge).to_be_visible()
    expect(badge).to_have_text(re.compile(r"^[1-9]\d*$"))
    gp.click("a[href='/proposals']")
    waiting = gp.locator(f'#awaiting li.proposal[data-proposal="{proposal_id}"]')
    expect(waiting).to_have_attribute("data-status", "pending")
    expect(waiting.locator(".reason")).to_contain_text(REASON)
    expect(waiting.locator(".proposed")).to_contain_text("115")
    waiting.locator("input[name=note]").first.fill("Enig, vi ser på det igen om en måned")
    waiting.locator("button.approve").click()
    expect(gp.locator(f'#awaiting li.proposal[data-proposal="{proposal_id}"]')).to_have_count(0)

    # The plan has a new version by the GP with the new limits.
    gp.goto(f"{stack.base_url}/patients/{patient['id']}/plan")
    expect(gp.locator("#plan-version")).to_have_attribute("data-version", str(before + 1))
    expect(gp.locator("#plan-version")).to_contain_text(gp_name)
    expect(gp.locator('#plan-thresholds tr[data-code="pulse"] td[data-limit="yellow_high"]')
           ).to_have_text("115")
    expect(gp.locator("#plan-history li").first).to_contain_text(gp_name)
    expect(gp.locator("#plan-history li").first).to_contain_text(
        f"godkendt forslag nr. {proposal_id} fra Sygeplejerske Mette Holm")

    # The nurse's open page hears of the decision and shows it without her reloading.
    decided = nurse.locator(f'#proposals li.proposal[data-proposal="{proposal_id}"]')
    expect(decided).to_have_attribute("data-status", "approved")
    expect(decided.locator(".decision")).to_contain_text(gp_name)
    expect(nurse.locator("#plan-version")).to_have_attribute("data-version", str(before + 1))
