"""No 5xx on hostile input (issue 11, row 7): a property-based fuzz over every route of the app.

Every example sends one request to every route in `app.url_map`, for a clinician and for a
patient signed in (session cookie and CSRF header, so writes reach the views), with path
variables, query strings and JSON or form bodies filled with hostile values: Unicode digits,
integers of 2^63 and more, dates past year 9999, lists and objects where strings are
expected, deeply nested JSON, control characters. Any 5xx fails, and every error on `/fhir`
must be an OperationOutcome.

`TELEKOL_FUZZ_EXAMPLES` sets the examples per role and backend (default 5: one request to
every route and method per example, about 2,700 requests in all on SQLite and PostgreSQL);
the counts are printed at the end (`pytest -s`): requests sent, 5xx seen.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.web import create_app

from tests.test_admin_pages import csrf_token

EXAMPLES = int(os.environ.get("TELEKOL_FUZZ_EXAMPLES", "5"))
REPO = Path(__file__).resolve().parent.parent
# /healthz answers 503 here by contract: the app runs without a broker or gateway.
# Routes that end the fuzzer's own session: the fuzz would only test the login page after.
SESSION_ENDERS = {"/logout", "/api/auth/logout"}
SKIPPED_PREFIXES = ("/socket.io", "/static")

HOSTILE_TEXT = [
    "", " ", "0", "-1", "1", "٣", "²", "𝟗", "①", "१२३", "1٣", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "99999999999999999999999999", "1e309",
    "NaN", "Infinity", "0x10", "+5", "1.5", "9999-12-31", "9999-12-31T23:59:59-14:00",
    "10000-01-01", "0000-01-01", "0001-01-01T00:00:00+14:00", "2026-02-30", "ge9999-12-31",
    "lt0001-01-01", "ge10000-01-01T00:00:00Z", "2026-11-25T25:61:00Z", "\x00", "\x1f\x7f",
    "a\nb", "../../etc/passwd", "%", "%00", "' OR 1=1 --", "<script>x</script>", "a" * 3000,
    "Patient/", "Patient/x/y", "urn:oid:1.2.208.176.1.2|", "|", "||", ",", ",,,", "-", "*",
    "http://evil.example/", "//evil.example", "/\t/evil.example", "\\\\evil", "true", "null",
    "[]", "{}", "spo2", "http://loinc.org|59408-5", "-date", "_id", "ü", "\u202e", "\ufeff",
]
JSON_LEAVES = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=False), st.booleans(), st.none())


def _names(pattern: str) -> list[str]:
    found: set[str] = set()
    for folder in ("server", "clinician_ui"):
        for path in (REPO / folder).rglob("*.py"):
            found.update(re.findall(pattern, path.read_text()))
    return sorted(found)


# The parameter and field names the doors read, found in the sources, and a few more.
QUERY_NAMES = [*_names(r"""(?:args|form)\.(?:get|getlist)\(\s*["']([\w:.-]+)["']"""),
               "patient", "subject", "_count", "date", "code", "identifier", "since", "next"]
BODY_NAMES = [*_names(r"""body\.get\(\s*["'](\w+)["']"""),
              *_names(r"""body\[\s*["'](\w+)["']\s*\]"""), "resourceType", "status", "note"]


def json_values() -> st.SearchStrategy[Any]:
    """Return hostile JSON: leaves, lists and objects keyed by the names the doors read."""
    return st.recursive(JSON_LEAVES, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(BODY_NAMES), inner, max_size=4)), max_leaves=8)


def deep(depth: int) -> str:
    """Return JSON nested `depth` levels deep."""
    return "[" * depth + "]" * depth


class Fuzz:
    """One signed-in client and the counts of what it sent and got."""

    def __init__(self, app, username: str, ids: dict[str, list[str]]) -> None:
        self.app, self.ids = app, ids
        self.client = app.test_client()
        self.client.set_cookie("lang", "en")
        token = csrf_token(self.client.get("/login").get_data(as_text=True))
        answer = self.client.post("/login", data={"username": username,
                                                  "password": DEMO_PASSWORD,
                                                  "csrf_token": token})
        assert answer.status_code == 302, f"{username} could not log in"
        self.csrf = token
        self.sent: Counter[str] = Counter()
        self.routes = [(rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
                       for rule in app.url_map.iter_rules()
                       if not rule.rule.startswith(SKIPPED_PREFIXES)
                       and rule.rule not in SESSION_ENDERS]

    def path(self, rule, draw) -> str:
        """Return the rule's path with every variable filled, hostile or real."""
        def fill(match: re.Match[str]) -> str:
            converter, name = match.group(1) or "default", match.group(2)
            if converter == "int":
                value = draw(st.sampled_from(["0", "1", "7", "9223372036854775807",
                                              "9223372036854775808", "1" * 30]))
            else:
                value = draw(st.one_of(st.sampled_from(self.ids.get(name) or ["x"]),
                                       st.sampled_from(HOSTILE_TEXT)))
            return quote(value, safe="") or "x"

        return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", fill, rule.rule)

    def request(self, rule, method: str, draw) -> tuple[str, int, Any]:
        """Send one hostile request to the rule; return (url, status, response)."""
        path = self.path(rule, draw)
        names = draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=4))
        real = [value for values in self.ids.values() for value in values]
        query = [(n, draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.sampled_from(real))))
                 for n in names]
        url = path + ("?" + urlencode(query) if query else "")
        headers = {"X-CSRFToken": self.csrf}
        kind = draw(st.sampled_from(["json", "form", "deep", "none"])) \
            if method != "GET" else "none"
        options: dict[str, Any] = {"headers": headers}
        if kind == "json":
            options["data"] = json.dumps(draw(json_values()))
            options["content_type"] = "application/json"
        elif kind == "deep":
            options["data"] = deep(draw(st.sampled_from([200, 5000, 100000])))
            options["content_type"] = draw(st.sampled_from(["application/json",
                                                            "application/fhir+json"]))
        elif kind == "form":
            options["data"] = {n: draw(st.sampled_from(HOSTILE_TEXT)) for n in draw(
                st.lists(st.sampled_from(QUERY_NAMES + BODY_NAMES), max_size=4))}
        response = self.client.open(url, method=method, **options)
        healthz = rule.rule == "/healthz" and response.status_code == 503
        self.sent["healthz 503" if healthz else str(response.status_code)[0] + "xx"] += 1
        return f"{method} {url[:200]}", response.status_code, response

    def round(self, draw) -> list[str]:
        """Send one request to every route; return what answered 5xx or was not FHIR."""
        problems = []
        for rule, methods in self.routes:
            for method in methods:
                where, status, response = self.request(rule, method, draw)
                if status >= 500 and not (rule.rule == "/healthz" and status == 503):
                    problems.append(f"{status} {where}")
                elif rule.rule.startswith("/fhir") and status >= 400 and \
                        (response.get_json(silent=True) or {}).get(
                            "resourceType") != "OperationOutcome":
                    problems.append(f"{status} {where}: not an OperationOutcome")
        return problems


def _ids(demo: dict) -> dict[str, list[str]]:
    patients = [p["id"] for p in demo["patients"]]
    return {"patient_id": patients, "ident": patients, "id": patients,
            "org_id": [o["id"] for o in demo["organizations"]],
            "device_id": [d["device_id"] for d in demo["devices"]]}


@pytest.fixture(params=["nurse.aalby", "patient.karen"])
def fuzz(request, engine, demo, settings) -> Fuzz:
    """Return a fuzzer signed in as a clinician, or as a patient, on a fresh demo database."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    return Fuzz(app, request.param, _ids(demo))


TOTALS: Counter[str] = Counter()


def test_no_route_answers_5xx_to_hostile_input(fuzz: Fuzz) -> None:
    problems: list[str] = []

    # No shrinking: each example is a round over every route, and the report lists them all.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def every_route(data) -> None:
        found = fuzz.round(data.draw)
        problems.extend(found)
        assert not found, "\n".join(sorted(set(found))[:40])

    try:
        every_route()
    finally:
        TOTALS.update(fuzz.sent)
        sent = sum(fuzz.sent.values())
        print(f"\nfuzz: {sent} requests, {fuzz.sent['5xx']} 5xx "
              f"({dict(sorted(fuzz.sent.items()))}); run total {sum(TOTALS.values())} "
              f"requests, {TOTALS['5xx']} 5xx")
    assert fuzz.sent["5xx"] == 0 and not problems
