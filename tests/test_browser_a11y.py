"""Accessibility (issue 9, item 10): axe-core finds no serious or critical violation on any
page, in Danish and English, at desktop width and on a 390 px phone.

One walk, one browser, one stack of its own (the readings it publishes would otherwise show up
in other tests' pages). Every page a demo login can open is in WALK: a new page is one line
there. axe-core comes from the `axe-playwright-python` package (docs/accessibility.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser_fixtures import WAIT_MS
from tests.stack_fixtures import Stack, StatusListener, start_stack, stop_stack
from tests.test_browser import submit_login

pytestmark = pytest.mark.browser

KAREN, INGE, SVEND, ELSE = "0101419996", "2207389998", "2502399993", "1406449990"
PATIENT_TABS = ("/patients/{patient}", "/patients/{patient}/team", "/patients/{patient}/plan",
                "/patients/{patient}/messages", "/patients/{patient}/phone")
CLINICIAN_PAGES = ("/", "/messages", "/proposals", "/handovers", *PATIENT_TABS)
OWN_PAGES = ("/me", "/me/plan", "/me/messages", "/me/access-log", "/questionnaire/cat",
             "/questionnaire/copd-symptoms")
ADMIN_PAGES = ("/admin/organizations", "/admin/users", "/admin/audit", "/admin/quarantine")
# Login (None: not logged in) -> its pages and the CPR of the patient whose tabs it opens.
# Each clinician opens a different picture: red, yellow, green, no readings, no consent.
WALK: dict[str | None, tuple[tuple[str, ...], str | None]] = {
    None: (("/login",), None),
    "nurse.aalby": (CLINICIAN_PAGES, KAREN),
    "gp.torvet": (CLINICIAN_PAGES, KAREN),
    "doctor.hospital": (CLINICIAN_PAGES, SVEND),
    "gp.skovvej": (CLINICIAN_PAGES, INGE),
    "nurse.boestrup": (CLINICIAN_PAGES, ELSE),
    "patient.karen": (OWN_PAGES, None),
    "admin": (ADMIN_PAGES, None),
}
# Pages that draw after the load event (fetches, Socket.IO): they are opened with "networkidle"
# and axe waits for this element too.
READY = {"/": '#live-state[data-state="live"]'}
# Readings published before the walk, so colours, alerts, charts and tables are on screen.
READINGS = {KAREN: [{"spo2": 90, "pulse": 96}, {"spo2": 85, "pulse": 104}],
            INGE: [{"spo2": 90}], SVEND: [{"spo2": 96, "pulse": 72}]}
LANGUAGES = ("da", "en")
WIDTHS = {"desktop": 1280, "phone": 390}
BLOCKING = {"serious", "critical"}


@dataclass(frozen=True)
class Visit:
    """One page seen by one login in one language at one width."""

    login: str
    language: str
    width: str
    path: str


@pytest.fixture(scope="module")
def walk_stack(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Yield a stack of its own on SQLite, with the readings of READINGS stored."""
    stack = start_stack(database_factory("sqlite"), str(tmp_path_factory.mktemp("a11y")))
    try:
        for cpr, messages in READINGS.items():
            publish(stack, cpr, messages)
        yield stack
    finally:
        stop_stack(stack)


def publish(stack: Stack, cpr: str, messages: list[dict[str, float]]) -> None:
    """Send each reading set from the patient's hub, a minute apart, and wait until stored."""
    patient = next(p for p in stack.fixture["patients"] if p["cpr"] == cpr)
    device = next(d for d in stack.fixture["devices"] if d["patient"] == patient["id"])
    listener = StatusListener(stack, device)
    try:
        for age, values in enumerate(reversed(messages)):
            msg_id = f"a11y-{uuid.uuid4().hex}"
            taken = datetime.now(UTC) - timedelta(minutes=age)
            body = {"msg_id": msg_id, "taken_at": taken.isoformat(timespec="seconds"),
                    "readings": [{"code": c, "value": v} for c, v in values.items()]}
            assert stack.mosquitto_pub(device, json.dumps(body)).returncode == 0
            assert listener.wait_for(msg_id)["result"] == "accepted"
    finally:
        listener.close()


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; return its serious and critical violations."""
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in BLOCKING]


def open_as(browser: Browser, stack: Stack, login: str | None) -> BrowserContext:
    """Return a browser context logged in as `login` (or not logged in)."""
    context = browser.new_context(locale="da-DK", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(AXE_SCRIPT)  # once per context, not sent again for every page
    if login is not None:
        submit_login(context.new_page(), stack, login, stack.user(login)["password"])
        expect(context.pages[0].locator("main")).to_be_visible()  # landed after the redirect
        context.pages[0].close()
    return context


def audit(page: Page, stack: Stack, path: str) -> dict[str, list[dict[str, Any]]]:
    """Open `path` and return the blocking violations at each width in WIDTHS."""
    response = page.goto(stack.base_url + path,
                         wait_until="networkidle" if path in READY else "load")
    assert response is not None and response.status == 200, f"{path}: {response}"
    if path in READY:
        expect(page.locator(READY[path])).to_be_visible()
    found = {}
    for width, pixels in WIDTHS.items():
        page.set_viewport_size({"width": pixels, "height": 900})
        found[width] = blocking_violations(page)
    return found


def table(counts: dict[Visit, int]) -> str:
    """Return the per-page counts as a text table, one row per login and page."""
    columns = [(lang, width) for lang in LANGUAGES for width in WIDTHS]
    rows = sorted({(v.login, v.path) for v in counts}, key=lambda r: (r[0], r[1]))
    head = f"{'login':<16} {'page':<32} " + " ".join(f"{lang}/{w:<8}" for lang, w in columns)
    lines = [head, "-" * len(head)]
    for login, path in rows:
        cells = " ".join(f"{counts[Visit(login, lang, w, path)]:<11}" for lang, w in columns)
        lines.append(f"{login:<16} {path:<32} {cells}")
    return "\n".join(lines)


def describe(visit: Visit, violation: dict[str, Any]) -> str:
    """Return one line naming the violation, where it is and the first offending elements."""
    targets = ", ".join(str(n["target"]) for n in violation["nodes"][:3])
    return (f"{visit.login} {visit.language} {visit.width} {visit.path}: {violation['id']} "
            f"({violation['impact']}, {len(violation['nodes'])}x) {targets}")


@pytest.mark.timeout(900)
def test_no_page_has_a_serious_or_critical_axe_violation_in_either_language_or_width(
        browser: Browser, walk_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    counts: dict[Visit, int] = {}
    problems: list[str] = []
    patients = {p["cpr"]: p["id"] for p in walk_stack.fixture["patients"]}
    for login, (paths, cpr) in WALK.items():
        context = open_as(browser, walk_stack, login)
        page = context.new_page()
        for language in LANGUAGES:
            context.add_cookies([{"name": "telekol_lang", "value": language,
                                  "url": walk_stack.base_url}])
            for template in paths:
                path = template.format(patient=patients.get(cpr or ""))
                for width, violations in audit(page, walk_stack, path).items():
                    visit = Visit(login or "(anonymous)", language, width, template)
                    counts[visit] = sum(len(v["nodes"]) for v in violations)
                    problems += [describe(visit, v) for v in violations]
        context.close()
    report = table(counts)
    with capsys.disabled():
        print(f"\naxe-core serious/critical violations (elements) per page:\n{report}")
    assert not problems, "\n".join(problems)


# Pages whose every focusable element is tabbed to: together they hold each kind of control
# (links, buttons, text fields, selects, check boxes, radio buttons, a scrollable table).
FOCUS_WALK: dict[str | None, tuple[str, ...]] = {
    None: ("/login",),
    "nurse.aalby": ("/", "/patients/{patient}", "/patients/{patient}/plan",
                    "/patients/{patient}/team", "/patients/{patient}/phone"),
    "patient.karen": ("/questionnaire/cat",),
    "admin": ("/admin/users",),
}
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  return {element: e.outerHTML.slice(0, 90), style: s.outlineStyle, width: s.outlineWidth,
          color: s.outlineColor, inTopbar: Boolean(e.closest(".topbar, .skip-link"))};
}"""
ON_DARK = "rgb(255, 209, 102)"  # --focus-on-dark in app.css


def tab_through(page: Page, limit: int = 400) -> list[dict[str, Any]]:
    """Press Tab until the focus is back where it began; return each element it stopped on."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)  # None between the last element and the first
        if focused is not None and seen and focused["element"] == seen[0]["element"]:
            return seen
        seen += [focused] if focused is not None else []
    raise AssertionError(f"the focus did not come round again after {limit} presses of Tab")


@pytest.mark.parametrize(("login", "paths"), FOCUS_WALK.items())
def test_every_element_that_takes_the_keyboard_focus_shows_a_3px_ring(
        browser: Browser, walk_stack: Stack, login: str | None, paths: tuple[str, ...]) -> None:
    karen = next(p["id"] for p in walk_stack.fixture["patients"] if p["cpr"] == KAREN)
    context = open_as(browser, walk_stack, login)
    page = context.new_page()
    faint = []
    for path in paths:
        page.goto(walk_stack.base_url + path.format(patient=karen),
                  wait_until="networkidle" if path in READY else "load")
        focused = tab_through(page)
        assert len(focused) > 2, f"{path}: Tab reached only {focused}"
        faint += [f"{path}: {f}" for f in focused
                  if f["style"] != "solid" or f["width"] != "3px"
                  or (f["inTopbar"] and f["color"] != ON_DARK)]
    context.close()
    assert not faint, "\n".join(faint)


SKIP_LINK = {"da": "Gå til indhold", "en": "Skip to content"}


@pytest.mark.parametrize("login", ["nurse.aalby", "patient.karen"])  # /login starts in its form
def test_the_first_tab_reaches_a_skip_link_that_moves_the_focus_to_the_main_content(
        browser: Browser, walk_stack: Stack, login: str) -> None:
    context = open_as(browser, walk_stack, login)
    page = context.new_page()
    for language, words in SKIP_LINK.items():
        context.add_cookies([{"name": "telekol_lang", "value": language,
                              "url": walk_stack.base_url}])
        page.goto(walk_stack.base_url + WALK[login][0][0], wait_until="networkidle")
        skip = page.locator(".skip-link")
        expect(skip).not_to_be_in_viewport()  # out of the way until it is needed
        page.keyboard.press("Tab")
        expect(skip).to_be_focused()
        expect(skip).to_have_text(words)
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main#main")).to_be_focused()
        page.keyboard.press("Tab")  # the next stop is inside the page content, past the menus
        assert page.evaluate("() => document.activeElement.closest('main') !== null")
    context.close()
