"""Handing monitoring responsibility over in headless Chromium against the running platform.

The patient is created for this test in the stack's database (through the episode
service), so no other test's patients change hands. No sleeps: every wait is Playwright's
auto-waiting on something the page shows.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from telekol.server.care.episodes import record_consent, start_episode
from telekol.server.db import make_engine, session_scope
from telekol.server.models import Patient

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.browser





@pytest.fixture
def aalby_patient(stack: Stack) -> Patient:
    """Enrol a fresh patient: Aalby monitors and keeps the data, Torvet treats, sharing given."""
    engine = make_engine(stack.settings.database_url)
    suffix = f"{secrets.randbelow(1000):03d}"
    patient = Patient(id=str(uuid.uuid4()), cpr=f"0202409{suffix}", given="Hanne Test",
                      family=f"Overdrager{suffix}")
    with session_scope(engine) as session:
        session.add(patient)
        session.flush()
        for scope in ("participation", "sharing"):
            record_consent(session, patient.id, scope, True, note="browser test")
        start_episode(session, patient.id, custodian="muni-aalby", monitoring="muni-aalby",
                      treatment="gp-torvet")
    engine.dispose()
    return patient


def log_in(page: Page, stack: Stack, username: str) -> None:
    """Log in through the form and wait for the overview."""
    page.goto(f"{stack.base_url}/login")
    page.fill("#username", username)
    page.fill("#password", stack.user(username)["password"])
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/")


def test_a_nurse_hands_monitoring_to_another_municipality_which_accepts(
        stack: Stack, new_page: Callable[[], Page], aalby_patient: Patient) -> None:
    team_url = f"{stack.base_url}/patients/{aalby_patient.id}/team"
    aalby = new_page()
    log_in(aalby, stack, "nurse.aalby")
    aalby.goto(team_url)
    monitoring = aalby.locator('#responsibility-line [data-part="monitoring"]')
    expect(monitoring).to_contain_text("Aalby")
    aalby.select_option("#handover-responsibility", "monitoring")
    aalby.select_option("#handover-to", "muni-boestrup")
    aalby.fill("#handover-reason", "The patient moves to Bøstrup")
    aalby.click("#handover-form button[type=submit]")
    expect(aalby).to_have_url(team_url)
    expect(aalby.locator("#handovers li[data-handover]")).to_contain_text("Bøstrup")
    expect(monitoring).to_contain_text("Aalby")  # nothing moves before acceptance

    boestrup = new_page()
    log_in(boestrup, stack, "nurse.boestrup")
    boestrup.click('nav.mainnav a[href="/handovers"]')
    row = boestrup.locator("#incoming tr", has_text=aalby_patient.display)
    expect(row).to_contain_text("02.02.1940")
    expect(row).to_contain_text("The patient moves to Bøstrup")
    expect(boestrup.locator("#nav-handovers")).to_have_text("1")
    row.locator("button.accept").click()

    expect(boestrup).to_have_url(team_url)
    expect(boestrup.locator('#responsibility-line [data-part="monitoring"]')).to_contain_text(
        "Bøstrup")
    expect(boestrup.locator('#responsibility-line [data-part="custodian"]')).to_contain_text(
        "Aalby")
    expect(boestrup.locator('#team tr[data-org="muni-boestrup"]')).to_have_attribute(
        "data-role", "monitoring")
    aalby.reload()
    expect(monitoring).to_contain_text("Bøstrup")
    expect(aalby.locator("#handovers li[data-handover]")).to_have_count(0)
