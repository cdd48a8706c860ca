"""Messages in headless Chromium against the whole running platform.

The patient and her care team write to each other and see it live; the care team's own
thread never reaches the patient. No sleeps: every wait is Playwright's auto-waiting, and
"never received" is proved with a sentinel sent after it through the same server, since
events reach a screen in order (see tests/test_browser.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.browser





def log_in(page: Page, stack: Stack, username: str) -> None:
    """Log in through the form."""
    page.goto(f"{stack.base_url}/login")
    page.fill("#username", username)
    page.fill("#password", stack.user(username)["password"])
    page.click("main form button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/login"))


def open_live(page: Page, stack: Stack, path: str) -> None:
    """Open a page and wait until its messages are live and caught up."""
    page.goto(f"{stack.base_url}{path}")
    expect(page.locator('html[data-messages="live"]')).to_have_count(1)


def send(page: Page, channel: str, text: str) -> None:
    """Write `text` in the thread's form and send it (the page reloads on the thread)."""
    form = page.locator(f"#thread-{channel} form")
    form.locator("textarea[name=body]").fill(text)
    form.locator("button[type=submit]").click()
    expect(page.locator(f"#thread-{channel} [data-messages]")).to_contain_text(text)


def api(page: Page, stack: Stack, method: str, path: str, body: Any = None) -> Any:
    """Call the JSON API with the page's session (and its CSRF token for POST)."""
    if method == "GET":
        response = page.request.get(f"{stack.base_url}{path}")
    else:
        token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
        response = page.request.post(f"{stack.base_url}{path}", data=body,
                                     headers={"X-CSRFToken": token})
    assert response.ok, (path, response.status, response.text())
    return response.json()


def received_frames(page: Page) -> list[str]:
    """Collect every WebSocket frame the page receives (Socket.IO events included)."""
    frames: list[str] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(
            payload if isinstance(payload, str) else payload.decode(errors="replace")))

    page.on("websocket", watch)
    return frames


def test_the_patient_and_the_care_team_write_live_and_the_team_thread_stays_private(
        stack: Stack, new_page: Callable[[], Page]) -> None:
    karen = next(p for p in stack.fixture["patients"] if p["name"] == "Karen Test Jensen")
    tag = uuid.uuid4().hex[:8]
    thread_path = f"/patients/{karen['id']}/messages"

    nurse = new_page()
    log_in(nurse, stack, "nurse.aalby")
    open_live(nurse, stack, "/messages")
    unread = api(nurse, stack, "GET", "/api/messages/unread-count")["total"]
    nurse.evaluate("window.__marker = 1")

    patient = new_page()
    frames = received_frames(patient)
    log_in(patient, stack, "patient.karen")
    open_live(patient, stack, "/me/messages")
    question = f"Jeg er mere forpustet i dag. Skal jeg gøre noget? ({tag})"
    send(patient, "patient", question)

    # The nurse's open inbox: the badge rises and the message appears, without a reload.
    expect(nurse.locator("#nav-unread")).to_have_text(str(unread + 1))
    expect(nurse.locator("#nav-unread")).to_be_visible()
    row = nurse.locator(f'tr[data-patient="{karen["id"]}"]')
    expect(row.locator(".preview")).to_contain_text(question)
    expect(nurse.locator("[data-inbox] tr").first).to_have_attribute("data-patient", karen["id"])
    assert nurse.evaluate("window.__marker") == 1, "the inbox reloaded"

    # She opens the thread (which marks it read) and answers; Karen sees it live.
    nurse_thread = nurse.context.new_page()
    open_live(nurse_thread, stack, thread_path)
    expect(nurse_thread.locator("#thread-patient [data-messages]")).to_contain_text(question)
    patient.evaluate("window.__marker = 1")
    answer = f"Tag din anfaldsmedicin og mål igen om en time. Vi ringer til dig. ({tag})"
    send(nurse_thread, "patient", answer)
    reply = patient.locator("#thread-patient [data-messages] li").filter(has_text=answer)
    expect(reply).to_contain_text("Sygeplejerske Mette Holm · Hjemmesygeplejen, Aalby Kommune")
    assert patient.evaluate("window.__marker") == 1, "the patient's page reloaded"
    expect(patient.locator("#nav-unread")).to_be_hidden()  # read where it appeared

    # The GP writes in the care team's thread: the team hears it live, Karen never does.
    doctor = new_page()
    log_in(doctor, stack, "gp.torvet")
    open_live(doctor, stack, thread_path)
    secret = f"Kun for plejeteamet {tag}"
    send(doctor, "team", secret)
    expect(nurse_thread.locator("#thread-team [data-messages]")).to_contain_text(secret)
    sentinel = f"Sentinel {tag}"
    api(nurse_thread, stack, "POST", f"/api/patients/{karen['id']}/messages",
        {"channel": "patient", "body": sentinel})
    expect(patient.locator("#thread-patient [data-messages]")).to_contain_text(sentinel)
    expect(patient.locator("main")).not_to_contain_text(secret)
    assert patient.locator("#thread-team").count() == 0
    assert any(sentinel in frame for frame in frames), "the patient's socket was not watched"
    assert not any(secret in frame for frame in frames), "the team message reached the patient"
