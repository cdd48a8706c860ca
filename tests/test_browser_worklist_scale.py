"""The work list with 1,000 patients in Chromium: it renders a page, pages, finds, updates.

A stack of its own (SQLite) with 1,000 demo patients and a day of readings each, a quarter of
them yellow or red, seeded as `telekol bench-worklist` seeds (server/ops/bench/worklist.py). How
fast it is belongs to that benchmark; this proves it works at that size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from telekol.server.ops.bench.worklist import seed_history

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack, start_stack, stop_stack
from tests.test_browser import open_dashboard, publish_spo2, row

pytestmark = pytest.mark.browser
PATIENTS = 1000


@pytest.fixture(scope="module")
def big(database_factory, tmp_path_factory) -> Iterator[Stack]:
    running = start_stack(database_factory("sqlite"), str(tmp_path_factory.mktemp("big")),
                          patients=PATIENTS, before=seed_history)
    yield running
    stop_stack(running)


def test_a_thousand_patients_give_a_sorted_first_page_and_more_pages(
        big: Stack, new_page: Callable[[], Page]) -> None:
    aalby = [p for p in big.fixture["patients"] if "muni-aalby" in p["care_team"]]
    page = new_page()
    open_dashboard(page, big, "nurse.aalby")
    expect(page.locator("#worklist tbody[data-patient]")).to_have_count(50)
    pages = -(-len(aalby) // 50)
    expect(page.locator("nav.paging")).to_contain_text(
        f"Side 1 af {pages} ({len(aalby)} patienter)")
    statuses = page.locator("#worklist tbody").evaluate_all(
        "rows => rows.map(r => r.dataset.status)")
    rank = {"red": 0, "yellow": 1, "blue": 2, "green": 3, "paused": 4}
    assert statuses == sorted(statuses, key=rank.__getitem__) and statuses[0] == "red"
    page.locator('nav.paging a[rel="next"]').click()
    expect(page.locator("nav.paging")).to_contain_text(f"Side 2 af {pages}")
    expect(page.locator("#worklist tbody[data-patient]")).to_have_count(50)
    last = aalby[-1]
    page.fill('input[name="q"]', last["cpr"][:6])
    page.locator(".worklist-filters button[type=submit]").click()
    expect(row(page, last["id"])).to_have_count(1)


def test_a_reading_updates_its_row_on_a_page_of_a_thousand(
        big: Stack, new_page: Callable[[], Page]) -> None:
    page = new_page()
    open_dashboard(page, big, "nurse.aalby")
    last = page.locator("#worklist tbody[data-patient]").last  # the page's last: not red
    expect(last).not_to_have_attribute("data-status", "red")
    patient_id = last.get_attribute("data-patient") or ""
    device = next(d for d in big.fixture["devices"] if d["patient"] == patient_id)
    page.evaluate("window.__marker = 1")
    publish_spo2(big, device, 84)
    found = row(page, patient_id)
    expect(found).to_have_attribute("data-status", "red", timeout=WAIT_MS)
    expect(found.locator(".wl-why .why")).to_contain_text(re.compile(r"SpO2 84 % er under"))
    expect(page.locator("#worklist tbody").first).to_have_attribute("data-patient", patient_id)
    expect(page.locator("#worklist tbody[data-patient]")).to_have_count(50)  # still one page
    assert page.evaluate("window.__marker") == 1
