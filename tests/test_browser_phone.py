"""The patient's own pages on a phone (390 and 360 px wide) in headless Chromium.

What an older person with COPD needs from a phone screen, measured rather than eyeballed:
no sideways scrolling, tap targets at least 44 px (WCAG 2.5.5), 18 px body text, "Log ud"
on screen, the monitoring nurses' number as a tap-to-call link, answer buttons that work
by tapping and from the keyboard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack
from tests.test_browser import device_of, publish_spo2, submit_login

pytestmark = pytest.mark.browser

KAREN = "Karen Test Jensen"
PAGES = ("/me", "/me/plan", "/me/access-log", "/me/messages", "/questionnaire/cat",
         "/questionnaire/copd-symptoms")
AALBY_PHONE = ("tel:+4572000021", "72 00 00 21")  # made-up demo number (server/demo/seed.py)
MIN_TARGET_PX = 44
MIN_BODY_PX = 18
MIN_TEXT_PX = 16  # secondary lines (times, notes) may be a little smaller than body text
# Everything a person taps, and every element that carries text of its own, measured in the
# page: what is smaller than allowed is returned, described, to make a failure readable.
MEASURE = """([minTarget, minText]) => {
  const shown = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('.sr-only'); };
  const name = (el) => `${el.tagName.toLowerCase()} "${(el.textContent || el.value || '')
    .trim().replace(/\\s+/g, ' ').slice(0, 40)}"`;
  const targets = document.querySelectorAll(
    'main a, main button, main input:not([type=hidden]), main select, main textarea, ' +
    '.topbar a, .topbar button, .mainnav a');
  const small = [];
  for (const el of targets) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    const answer = el.type === 'radio';
    if (r.height < minTarget || (answer && r.width < minTarget))
      small.push(`${name(el)} ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  const tiny = [];
  for (const el of document.querySelectorAll('main *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (own && shown(el) && size < minText) tiny.push(`${name(el)} ${size}px`);
  }
  const logout = document.querySelector('button.logout').getBoundingClientRect();
  return {
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
    body: parseFloat(getComputedStyle(document.body).fontSize), small, tiny,
    logout: [logout.left, logout.right, logout.top, logout.bottom, logout.height],
    tel: [...document.querySelectorAll('a[href^="tel:"]')].filter(shown).map((a) =>
      [a.getAttribute('href'), a.textContent.trim().replace(/\\s+/g, ' ')]),
  };
}"""


@pytest.fixture(scope="module", params=[390, 360], ids=lambda width: f"{width}px")
def phone(request: pytest.FixtureRequest, stack: Stack, browser: Browser) -> dict[str, Any]:
    """Log Karen in on a phone-sized screen and measure each of her pages.

    Her newest SpO2 is red, so /me shows the advice with its number to call, and a nurse
    has looked at her record, so the access log has someone else's look in it.
    """
    device, karen = device_of(stack, KAREN)
    publish_spo2(stack, device, 86)
    nurse = {"Authorization": f"Bearer {stack.token('nurse.aalby')}"}
    assert requests.get(f"{stack.base_url}/fhir/Patient/{karen['id']}", headers=nurse,
                        timeout=10).status_code == 200
    context = browser.new_context(locale="da-DK", viewport={"width": request.param,
                                                            "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    submit_login(page, stack, "patient.karen", stack.user("patient.karen")["password"])
    expect(page).to_have_url(f"{stack.base_url}/me")
    measured = {}
    for path in PAGES:
        page.goto(f"{stack.base_url}{path}")
        if path == "/me":  # the charts are drawn after load: measure what the patient sees
            expect(page.locator('canvas[data-chart="spo2"]')).to_have_attribute(
                "data-drawn", re.compile(r"^[1-9]"))
        measured[path] = page.evaluate(MEASURE, [MIN_TARGET_PX, MIN_TEXT_PX])
    context.close()
    return {"width": request.param, "pages": measured}


def test_no_page_scrolls_sideways(phone: dict[str, Any]) -> None:
    widths = {path: m["scroll"] for path, m in phone["pages"].items()}
    assert {path: w for path, w in widths.items() if w > phone["width"]} == {}


def test_every_link_button_and_answer_is_at_least_44_px(phone: dict[str, Any]) -> None:
    assert {path: m["small"] for path, m in phone["pages"].items() if m["small"]} == {}


def test_body_text_is_18_px_and_no_text_is_below_16_px(phone: dict[str, Any]) -> None:
    assert {path: m["body"] for path, m in phone["pages"].items()} == dict.fromkeys(
        PAGES, MIN_BODY_PX)
    assert {path: m["tiny"] for path, m in phone["pages"].items() if m["tiny"]} == {}


def test_log_out_is_on_screen_and_big_enough_to_tap(phone: dict[str, Any]) -> None:
    for path, m in phone["pages"].items():
        left, right, top, bottom, height = m["logout"]
        assert left >= 0 and right <= phone["width"] and top >= 0 and bottom <= 844, path
        assert height >= MIN_TARGET_PX, path


@pytest.mark.parametrize("path", ["/me", "/me/plan", "/me/messages"])
def test_the_monitoring_nurses_number_is_a_tap_to_call_link(phone: dict[str, Any],
                                                            path: str) -> None:
    links = phone["pages"][path]["tel"]
    assert any(href == AALBY_PHONE[0] and AALBY_PHONE[1] in text for href, text in links), links


def test_red_advice_offers_the_nurses_number_and_112_first(phone: dict[str, Any]) -> None:
    assert [href for href, _ in phone["pages"]["/me"]["tel"][:2]] == [AALBY_PHONE[0],
                                                                        "tel:112"]


def test_the_symptom_diary_is_answered_by_tapping_and_from_the_keyboard(
        stack: Stack, new_page: Callable[[], Page]) -> None:
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    submit_login(page, stack, "patient.karen", stack.user("patient.karen")["password"])
    expect(page).to_have_url(f"{stack.base_url}/me")
    page.goto(f"{stack.base_url}/questionnaire/copd-symptoms")
    first = page.locator("fieldset.question").nth(0)
    first.locator("label.answer", has_text="Ja").click()  # a tap on the big button
    expect(first.locator("input[value=yes]")).to_be_checked()
    # The keyboard: Tab reaches the next question's radio group, arrows choose, focus shows.
    first.locator("input[value=yes]").focus()
    page.keyboard.press("Tab")
    second = page.locator("fieldset.question").nth(1)
    expect(second.locator("input[value=yes]")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(second.locator("input[value=no]")).to_be_checked()
    outline = second.locator("input[value=no] + .face").evaluate(
        "el => getComputedStyle(el).outlineStyle")
    assert outline != "none"
    for index in (2, 3):
        question = page.locator("fieldset.question").nth(index)
        question.locator("label.answer", has_text="Nej").click()
    page.get_by_role("button", name="Send svar").click()
    expect(page.locator("#next-steps")).to_be_visible()
    expect(page.locator("#result")).to_contain_text("Du har 1 ud af 4 symptomer")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
