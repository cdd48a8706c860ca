"""The access log in words: every kind of record the doors write reads as plain language."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from telekol.clinician_ui.access_log_views import (
    RESOURCES,
    access_words,
    day_words,
    group_words,
    time_words,
)
from telekol.server.audit.digest import Access, PersonDay
from telekol.server.audit.log import resource_kind
from telekol.server.web import create_app

ROOT = Path(__file__).resolve().parent.parent
# Where a door names what it touched: note(..., "read", "Kind..."), the FHIR search helper
# search("Kind", ...), a module constant _KIND = "Kind", and "Kind/{...}" or "Kind?..."
# strings (care_plan_api.plan_resource, the command line).
_NOTED = re.compile(r'\bnote\(.{0,200}?,\s*"[a-z]+",\s*f?"([A-Z][A-Za-z]+)', re.S)
_SEARCHED = re.compile(r'\bsearch\("([A-Z][A-Za-z]+)"')
_CONSTANT = re.compile(r'^_[A-Z]+ = "([A-Z][A-Za-z]+)"$', re.M)
_NAMED = re.compile(r'\bf?"([A-Z][A-Za-z]+)(?:/\{|\?)')


def recorded_kinds() -> set[str]:
    """Return every resource kind the web doors and the command line write to the log."""
    sources = [*ROOT.glob("server/web/**/*.py"), *ROOT.glob("clinician_ui/*.py"),
               ROOT / "server/ops/cli_admin.py"]
    found: set[str] = set()
    for path in sources:
        text = path.read_text()
        for pattern in (_NOTED, _SEARCHED, _CONSTANT, _NAMED):
            found.update(pattern.findall(text))
    return found


def test_the_scan_finds_the_kinds_it_is_meant_to_find() -> None:
    assert recorded_kinds() >= {"Patient", "Observation", "CarePlan", "InboxItem", "Message",
                                "MessageReadMark", "Handover", "Organization", "Task",
                                "QuestionnaireResponse", "AuditEvent"}


def test_every_kind_the_doors_record_has_words_for_the_patient() -> None:
    assert sorted(recorded_kinds() - set(RESOURCES)) == []


@pytest.mark.parametrize(("resource", "kind"), [
    ("Observation?patient=p&code=spo2", "Observation"), ("CarePlan/3/_history/2", "CarePlan"),
    ("InboxItem", "InboxItem"), ("/patients/abc/messages", "Page"), ("/api/x?y=1", "Page"),
])
def test_a_resource_string_has_a_kind_and_a_path_is_a_page(resource: str, kind: str) -> None:
    assert resource_kind(resource) == kind


@pytest.fixture
def english(settings):
    """Yield inside a request of the web app that reads English."""
    app = create_app(settings, live=False)
    with app.test_request_context("/?lang=en"):
        yield


@pytest.fixture
def danish(settings):
    """Yield inside a request of the web app that reads Danish."""
    app = create_app(settings, live=False)
    with app.test_request_context("/?lang=da"):
        yield


@pytest.mark.parametrize(("access", "english_words", "danish_words"), [
    (Access("read", "Observation", "ui", False, 3), "looked at your measurements 3 times",
     "så på dine målinger 3 gange"),
    (Access("read", "Patient", "ui", False, 1), "looked at your record once",
     "så på dine personoplysninger én gang"),
    (Access("search", "InboxItem", "api", False, 2),
     "looked up alerts about you in the doctor's inbox 2 times, through an app or another system",
     "søgte i alarmer om dig i lægens indbakke 2 gange, gennem en app eller et andet system"),
    (Access("read", "Page", "ui", True, 1), "tried to see your data but was not allowed once",
     "prøvede at se dine data, men fik ikke lov én gang"),
    (Access("update", "MessageReadMark", "ui", False, 4), "read messages about you 4 times",
     "læste beskeder om dig 4 gange"),
    (Access("read", "Unheard-of", "fhir", False, 1),
     "looked at your data once, through another health IT system",
     "så på dine data én gang, gennem et andet it-system i sundhedsvæsenet"),
])
def test_a_line_says_what_was_done_how_often_and_through_what(
        settings, access: Access, english_words: str, danish_words: str) -> None:
    app = create_app(settings, live=False)
    for lang, expected in (("en", english_words), ("da", danish_words)):
        with app.test_request_context(f"/?lang={lang}"):
            assert access_words(access)["text"] == expected


@pytest.mark.parametrize(("day", "words"), [
    (date(2026, 12, 2), "Today"), (date(2026, 12, 1), "Yesterday"),
    (date(2026, 11, 30), "Monday 30.11.2026"),
])
def test_a_day_is_today_yesterday_or_its_weekday_and_date(english, day: date,
                                                          words: str) -> None:
    assert day_words(day, date(2026, 12, 2)) == words


def test_times_are_local_and_a_single_time_is_not_a_range(danish) -> None:
    morning = datetime(2026, 12, 2, 7, 12, tzinfo=UTC)
    noon = datetime(2026, 12, 2, 11, 30, tzinfo=UTC)
    assert time_words(morning, morning) == "kl. 08:12"
    assert time_words(morning, noon) == "mellem kl. 08:12 og 12:30"


def group(name: str, role: str, org: str, user_id: int | None = 2) -> PersonDay:
    moment = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    return PersonDay(date(2026, 12, 2), user_id, name, role, org,
                     (Access("read", "Observation", "ui", False, 3),), moment, moment)


@pytest.mark.parametrize(("person", "me", "who", "role", "organization"), [
    (group("Sygeplejerske Mette Holm", "nurse", "muni-aalby"), 9, "Sygeplejerske Mette Holm",
     "", "Hjemmesygeplejen, Aalby Kommune"),  # the name already says "nurse"
    (group("Mette Holm", "nurse", "muni-aalby"), 9, "Mette Holm", "Sygeplejerske",
     "Hjemmesygeplejen, Aalby Kommune"),
    (group("Karen Test Jensen", "patient", "", user_id=9), 9, "Du", "", ""),
    (group("", "", "gp-torvet", user_id=None), 9, "Lægerne ved Torvet", "",
     "Lægerne ved Torvet"),
    (group("", "", "", user_id=None), 9, "En administrator", "", ""),
])
def test_a_group_names_the_person_their_role_and_organisation(
        danish, person: PersonDay, me: int, who: str, role: str, organization: str) -> None:
    names = {"muni-aalby": "Hjemmesygeplejen, Aalby Kommune", "gp-torvet": "Lægerne ved Torvet"}
    words = group_words(person, names, me)
    assert (words["who"], words["role"], words["organization"]) == (who, role, organization)
    assert words["lines"][0]["text"] == "så på dine målinger 3 gange"
