"""Issue 4's "done when", in headless Chromium: every demo user in turn sees exactly the
patients and actions their role and organisation allow, and the patient reads every one of
those looks in "who has seen my data"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from telekol.server.demo.seed import USERS

from tests.stack_fixtures import Stack
from tests.test_browser import submit_login

pytestmark = pytest.mark.browser

KAREN = "0101419996"  # the demo patient user's own record
# What each clinician may do on Karen's care plan (docs/access.md): the municipality
# monitors, the GP treats, the hospital is a specialist on the team; others do not see her.
PLAN_ACTIONS = {
    "nurse.aalby": {"edit": True, "propose": True},
    "gp.torvet": {"edit": True, "propose": False},  # sets thresholds herself
    "doctor.hospital": {"edit": False, "propose": True},
}




def _patient(stack: Stack, cpr: str) -> dict[str, Any]:
    return next(p for p in stack.fixture["patients"] if p["cpr"] == cpr)


def _rows(page: Page) -> set[str]:
    rows = page.locator("#worklist tbody[data-patient]")
    return {rows.nth(i).get_attribute("data-patient") or "" for i in range(rows.count())}


def test_each_demo_user_sees_exactly_what_their_role_and_organisation_allow(
        stack: Stack, new_page: Callable[[], Page]) -> None:
    karen = _patient(stack, KAREN)
    clinicians = [u for u in stack.fixture["users"] if u["organization"]]
    for user in clinicians:
        page = new_page()
        submit_login(page, stack, user["username"], user["password"])
        expect(page).to_have_url(f"{stack.base_url}/")
        demo = {p["id"] for p in stack.fixture["patients"]}
        mine = {p["id"] for p in stack.fixture["patients"]
                if user["organization"] in p["care_team"]}
        for patient_id in mine:  # every one of them is listed ...
            expect(page.locator(f'#worklist tbody[data-patient="{patient_id}"]')).to_have_count(1)
        # ... and no other demo patient (other tests add patients of their own to the stack)
        assert _rows(page) & demo == mine, user["username"]
        overview = page.goto(f"{stack.base_url}/patients/{karen['id']}")
        assert overview is not None
        if karen["id"] in mine:
            assert overview.status == 200
            expect(page.locator("#patient-name")).to_have_text(karen["name"])
            page.goto(f"{stack.base_url}/patients/{karen['id']}/plan")
            allowed = PLAN_ACTIONS[user["username"]]
            expect(page.locator("#save-plan")).to_have_count(int(allowed["edit"]))
            expect(page.locator("#propose-form")).to_have_count(int(allowed["propose"]))
        else:
            assert overview.status == 404, user["username"]
            expect(page.locator("#patient-name")).to_have_count(0)
        page.context.close()
    admin = new_page()
    submit_login(admin, stack, "admin", stack.user("admin")["password"])
    response = admin.goto(f"{stack.base_url}/patients/{karen['id']}")
    assert response is not None and response.status == 404
    admin.goto(f"{stack.base_url}/admin/users")
    expect(admin.locator("main")).to_contain_text("nurse.aalby")
    # The patient reads every one of those looks, and the refused attempts too.
    patient = new_page()
    submit_login(patient, stack, "patient.karen", stack.user("patient.karen")["password"])
    expect(patient).to_have_url(f"{stack.base_url}/me")
    patient.goto(f"{stack.base_url}/me/access-log")
    log = patient.locator("#access-log")
    names = {username: display for username, display, _role, _org in USERS}
    for user in clinicians:
        who = log.locator(".access-person", has=patient.locator(
            ".who", has_text=names[user["username"]]))
        expect(who.first).to_be_visible()
        if user["organization"] in karen["care_team"]:
            looked = who.locator(".what li:not(.refused)")
            assert looked.count() > 0, f"{user['username']}'s look is missing"
        else:
            expect(who.locator(".what li.refused").first).to_be_visible()  # shown nothing
