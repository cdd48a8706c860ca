"""Every page speaks one language: no English clinical text on a Danish page, no Danish
interface text on an English one.

In-process (Flask test client) on both backends: a world with red, yellow and blue alerts,
symptoms, an acknowledgement, a changed care plan and an approved proposal; every page of
every kind of user, in Danish and English. The texts checked are what a person reads: text
nodes, and the `title`, `aria-label`, `alt` and `placeholder` attributes. Names of people and
organisations and what clinicians typed (self-care texts, notes) are data, not interface.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlmodel import Session, select
from telekol.server.alerts.lifecycle import acknowledge
from telekol.server.alerts.scheduler import Scheduler
from telekol.server.care import plan as care_plan
from telekol.server.care import proposals
from telekol.server.db import utcnow
from telekol.server.models import Alert, CarePlanVersion, Message, ThresholdProposal, User
from telekol.server.web import create_app

from tests.test_patient_page import device_for, patient_id, send_readings
from tests.test_web import log_in

KAREN, POUL, SVEND = "Karen Test Jensen", "Poul Test Nielsen", "Svend Test Mortensen"
# What the product must never show a Danish reader (checked case-insensitively, as words).
ENGLISH = [
    "is below the", "is above the", "set by", "beats/min", "breaths/min", "yellow limit",
    "red limit", "must act", "acknowledged by", "not acknowledged", "latest:", "no open alerts",
    "measured", "sent later", "points since yesterday", "cardinal symptoms", "reports",
    "more breathless", "more sputum", "worse symptoms", "has sent nothing", "clock of device",
    "no spo2 received", "due", "falling", "rising", "steady", "work list", "red", "yellow",
    "green", "blue", "paused", "yellow_low", "red_low", "yellow_high", "red_high",
    "first version", "changed", "approved proposal", "push", "rooms:", "inboxitem",
    "observation?", "careplan/", "was shown a live update", "looked up", "looked at",
    "read", "search", "create", "update", "success", "denied", "subscribe", "patient/",
    "alert?", "questionnaireresponse", "yes", "no",
]
# What the product must never show an English reader (interface words, not data).
DANISH = [
    "er under den", "er over den", "sat af", "slag/min", "skal handle", "kvitteret",
    "ikke kvitteret", "senest:", "ingen åbne alarmer", "målt", "sendt senere", "rød", "gul",
    "grøn", "iltmætning", "arbejdsliste", "patienten melder", "faldende", "stigende",
]
PAGES = {
    "nurse.aalby": ["/", "/?filter=mine", "/patients/{karen}", "/patients/{karen}?days=1",
                    "/patients/{karen}/team", "/patients/{karen}/plan", "/patients/{poul}/plan",
                    "/patients/{karen}/messages", "/patients/{karen}/phone",
                    "/patients/{karen}/phone?questionnaire=cat", "/messages", "/proposals",
                    "/handovers"],
    "gp.torvet": ["/", "/patients/{poul}/plan", "/proposals"],
    "doctor.hospital": ["/", "/patients/{svend}"],
    "patient.karen": ["/me", "/me?days=90", "/me/plan", "/me/messages", "/me/access-log",
                      "/questionnaire/cat", "/questionnaire/copd-symptoms"],
    "admin": ["/admin/users", "/admin/organizations", "/admin/audit", "/admin/quarantine"],
}


class ReadText(HTMLParser):
    """Collect what a reader sees or hears: text and labelling attributes, no scripts; the
    contents of <code> are identifiers (usernames, ids, resource paths), not language."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self.skip += 1
        self.parts += [v for k, v in attrs if k in ("title", "aria-label", "alt", "placeholder")
                       and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def readable(page: str) -> str:
    parser = ReadText()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def found_phrases(text: str, phrases: list[str], allowed: set[str]) -> list[str]:
    """Return the phrases that occur as words (after removing data we know of)."""
    for data in sorted(allowed, key=len, reverse=True):
        text = text.replace(data, " ")
    lowered = text.casefold()
    return [p for p in phrases
            if re.search(rf"(?<![\w/]){re.escape(p)}(?![\w])", lowered)]


@pytest.fixture
def world(engine, demo, settings) -> dict[str, Any]:
    """A database where alerts of every colour exist, one is acknowledged, a plan changed."""
    karen, poul = patient_id(demo, KAREN), patient_id(demo, POUL)
    send_readings(engine, device_for(demo, KAREN), [
        (3, {"spo2": 95, "pulse": 80}), (1, {"spo2": 85, "pulse": 104}),
        (0.01, {"spo2": 90, "bp_sys": 170, "bp_dia": 99, "weight": 80.4, "fev1": 1.12})])
    send_readings(engine, device_for(demo, POUL), [(0.02, {"spo2": 91})])
    send_readings(engine, device_for(demo, SVEND), [(0.02, {"spo2": 84})])
    now = utcnow()
    # Some hours on: a planned SpO2 is missing (blue); nothing is old enough to close itself.
    Scheduler(engine, lambda events: None, clock=lambda: now + timedelta(hours=20)).run_once()
    with Session(engine) as session:
        nurse = session.exec(select(User).where(User.username == "nurse.aalby")).one()
        gp = session.exec(select(User).where(User.username == "gp.torvet")).one()
        alert = session.exec(select(Alert).where(Alert.patient_id == poul)).first()
        assert alert is not None
        acknowledge(session, nurse, alert.id or 0, "Ringer op")
        [proposal] = proposals.of_patient(session, poul)
        proposals.approve(session, gp, proposal, "Enig")
        current = care_plan.current_version(session, karen)
        assert current is not None
        changed = {**current.content, "thresholds": {
            **current.content["thresholds"], "pulse": {"yellow_high": 105, "red_high": 130}},
            "relative": {"weight_gain_kg": 2}}
        care_plan.save(session, gp, karen, current.version, changed)
        session.commit()
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    names = {p["name"] for p in demo["patients"]} | {o["name"] for o in demo["organizations"]}
    with Session(engine) as session:  # what people wrote is data in the language they wrote
        names |= {u.display_name for u in session.exec(select(User))}
        for plan in session.exec(select(CarePlanVersion)):
            names |= {*plan.content.get("self_care", {}).values(), *plan.content.get("goals", []),
                      plan.content.get("notes", "")}
        names |= {p.reason for p in session.exec(select(ThresholdProposal))}
        names |= {m.body for m in session.exec(select(Message))}
    return {"app": app, "ids": {"karen": karen, "poul": poul,
                                "svend": patient_id(demo, SVEND)}, "names": names}


@pytest.mark.parametrize(("lang", "phrases"), [("da", ENGLISH), ("en", DANISH)])
def test_no_page_mixes_languages(world, lang: str, phrases: list[str]) -> None:
    problems = []
    for username, paths in PAGES.items():
        client = world["app"].test_client()
        log_in(client, username)
        client.get(f"/language/{lang}")
        for path in paths:
            url = path.format(**world["ids"])
            response = client.get(url)
            assert response.status_code == 200, (username, url, response.status_code)
            text = html.unescape(readable(response.get_data(as_text=True)))
            for phrase in found_phrases(text, phrases, world["names"]):
                at = text.casefold().find(phrase)
                near = text[max(0, at - 60):at + 60]
                problems.append(f"{username} {url}: {phrase!r} in …{near}…")
    assert problems == [], "\n".join(problems)
