"""The generated access matrix: every role × organisation × patient × endpoint.

The expected answer comes from an oracle written here from the demo fixture and the
responsibility patterns in server/demo/seed.py — not from server/care/access.py — so a mistake in
`may` or in a view shows up as a cell that differs:

- may not see the patient → 404, exactly like a patient that does not exist;
- may see but not do → 403;
- may do → 2xx (a write may also meet 409 when an earlier cell changed the state).

Users: one per organisation and clinical role, every demo patient's own user, and an
administrator. Socket.IO is covered by the rooms an event goes to and the rooms a user joins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session, select
from telekol.server import events
from telekol.server.care.access import rooms_of, team_organizations
from telekol.server.demo.seed import HOSPITAL_PATTERN
from telekol.server.models import Organization, Patient, User
from telekol.server.web import create_app

CLINICAL = ("nurse", "doctor", "gp", "secretary")
CLINICIANS = ("nurse", "doctor", "gp")
PRESCRIBERS = ("doctor", "gp")
WRITE_OK = {200, 201, 202, 204, 409}


@dataclass(frozen=True)
class Person:
    """A user of the matrix and the token they call with."""

    username: str
    role: str
    organization: str | None
    patient: str | None
    token: str


@dataclass(frozen=True)
class Case:
    """One patient of the fixture and what the oracle knows about them."""

    id: str
    cpr: str
    seeing: frozenset[str]  # organisations consent lets see the data
    monitoring: str
    treatment: str
    custodian: str


def allowed(person: Person, action: str, case: Case) -> str:
    """Return "ok", "forbidden" or "absent" for a person doing `action` for a patient."""
    if person.role == "patient":
        if person.patient != case.id or action == "message_team":
            return "absent"  # the care team's own thread does not exist for the patient
        return "ok" if action in ("read", "message_patient") else "forbidden"
    if person.organization not in case.seeing or person.role not in CLINICAL:
        return "absent"
    org, role = person.organization, person.role
    responsible = org in (case.monitoring, case.treatment)
    rule = {
        "read": True, "message_team": True, "message_patient": True,
        "enter_data": role in CLINICIANS, "propose_thresholds": role in CLINICIANS,
        "edit_care_plan": role in CLINICIANS and responsible,
        "set_thresholds": role in PRESCRIBERS and org == case.treatment,
        "hand_over": role in CLINICIANS and responsible,
        "pause": role in CLINICIANS and responsible,
        "consent": responsible or org == case.custodian,
        # A secretary reads alerts; acting on them is a clinical decision (acknowledging
        # for another organisation's alerts changes nothing and still answers 200).
        "act_on_alerts": role in CLINICIANS,
    }[action]
    return "ok" if rule else "forbidden"


Body = Callable[[Person, Case], Any]


@dataclass(frozen=True)
class Endpoint:
    """A door onto one patient's data and the action it needs."""

    name: str
    method: str
    path: str  # "{p}" = patient id, "{cpr}" = CPR
    action: str
    body: Body | None = None
    search: bool = False  # a FHIR search: visible = at least one entry, absent = none/404
    clinicians_only: bool = False  # a patient has their own page for it under /me


def _reading(person: Person, case: Case) -> dict[str, Any]:
    return {"type": "weight", "value": 80.5, "unit": "kg",
            "taken_at": "2026-11-20T08:00:00+01:00", "method": "telephone"}


def _fhir_reading(person: Person, case: Case) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{case.id}"},
            "effectiveDateTime": "2026-11-20T08:00:00+01:00",
            "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org",
                              "code": "kg"}}


ENDPOINTS = [
    Endpoint("patient list", "GET", "/api/patients", "read"),
    Endpoint("FHIR Patient read", "GET", "/fhir/Patient/{p}", "read"),
    Endpoint("FHIR Patient by CPR", "GET",
             "/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|{cpr}", "read", search=True),
    Endpoint("FHIR $everything", "GET", "/fhir/Patient/{p}/$everything", "read"),
    Endpoint("FHIR EpisodeOfCare search", "GET", "/fhir/EpisodeOfCare?patient={p}", "read",
             search=True),
    Endpoint("FHIR CareTeam search", "GET", "/fhir/CareTeam?patient={p}", "read", search=True),
    Endpoint("FHIR Consent search", "GET", "/fhir/Consent?patient={p}", "read", search=True),
    Endpoint("FHIR CarePlan search", "GET", "/fhir/CarePlan?patient={p}", "read", search=True),
    Endpoint("FHIR Observation create", "POST", "/fhir/Observation", "enter_data",
             _fhir_reading),
    Endpoint("readings over time", "GET", "/api/patients/{p}/observations?code=spo2", "read"),
    Endpoint("episode", "GET", "/api/patients/{p}/episode", "read"),
    Endpoint("care plan", "GET", "/api/patients/{p}/care-plan", "read"),
    Endpoint("care plan versions", "GET", "/api/patients/{p}/care-plan/versions", "read"),
    Endpoint("proposals", "GET", "/api/patients/{p}/threshold-proposals", "read"),
    Endpoint("team messages", "GET", "/api/patients/{p}/messages?channel=team",
             "message_team"),
    Endpoint("patient messages", "GET", "/api/patients/{p}/messages?channel=patient",
             "message_patient"),
    Endpoint("consents", "GET", "/api/patients/{p}/consents", "read"),
    Endpoint("pauses", "GET", "/api/patients/{p}/pauses", "read"),
    Endpoint("post team message", "POST", "/api/patients/{p}/messages", "message_team",
             lambda person, case: {"channel": "team", "body": "matrix"}),
    Endpoint("phone reading", "POST", "/api/patients/{p}/readings", "enter_data", _reading),
    Endpoint("propose threshold", "POST", "/api/patients/{p}/threshold-proposals",
             "propose_thresholds",
             lambda person, case: {"measurement": "pulse", "reason": "matrix",
                                   "proposed": {"red_low": 35, "yellow_low": 45,
                                                "yellow_high": 115, "red_high": 135}}),
    Endpoint("pause monitoring", "POST", "/api/patients/{p}/pauses", "pause",
             lambda person, case: {"starts_at": "2027-01-01T00:00:00+01:00",
                                   "ends_at": "2027-01-05T00:00:00+01:00",
                                   "reason": "matrix"}),
    Endpoint("acknowledge the patient's alerts", "POST", "/api/patients/{p}/alerts/acknowledge",
             "act_on_alerts", lambda person, case: {"note": "matrix"}),
    Endpoint("overview page", "GET", "/patients/{p}", "read"),
    Endpoint("care team page", "GET", "/patients/{p}/team", "read", clinicians_only=True),
    Endpoint("care plan page", "GET", "/patients/{p}/plan", "read"),
    Endpoint("messages page", "GET", "/patients/{p}/messages", "read"),
    Endpoint("phone entry page", "GET", "/patients/{p}/phone", "enter_data"),
]
# The patient's own doors (role patient only; everyone else finds nothing there).
PATIENT_ENDPOINTS = ["/me", "/me/plan", "/me/messages", "/me/access-log"]


@pytest.fixture
def world(engine, demo, settings) -> tuple[Any, list[Person], list[Case]]:
    """Return the app, one user per organisation × role plus patients and admin, and cases."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    tokens = app.extensions["telekol"].tokens
    people: list[Person] = []
    with Session(engine, expire_on_commit=False) as session:
        template = session.exec(select(User).where(User.username == "admin")).one()
        orgs = session.exec(select(Organization)).all()
        users = [User(username=f"m.{org.id}.{role}", password_hash=template.password_hash,
                      display_name=f"Matrix {role}", role=role, organization_id=org.id)
                 for org in orgs for role in CLINICAL]
        users += [User(username=f"m.patient.{p['cpr']}", password_hash=template.password_hash,
                       display_name=p["name"], role="patient", patient_id=p["id"])
                  for p in demo["patients"]]
        session.add_all(users)
        session.commit()
        users.append(template)
        people = [Person(u.username, u.role, u.organization_id, u.patient_id, tokens.issue(u))
                  for u in users]
        kinds = {org.id: org.kind for org in orgs}
    cases = [_case(p, kinds) for p in demo["patients"]]
    return app, people, cases


def _case(patient: dict[str, Any], kinds: dict[str, str]) -> Case:
    by_kind = {kinds[org]: org for org in patient["members"]}
    if patient["cpr"] in HOSPITAL_PATTERN:
        monitoring = treatment = custodian = by_kind["hospital"]
    else:
        monitoring = custodian = by_kind["municipality"]
        treatment = by_kind["gp"]
    return Case(patient["id"], patient["cpr"], frozenset(patient["care_team"]), monitoring,
                treatment, custodian)


def _call(client: Any, person: Person, endpoint: Endpoint, case: Case) -> Any:
    path = endpoint.path.format(p=case.id, cpr=case.cpr)
    headers = {"Authorization": f"Bearer {person.token}"}
    body = endpoint.body(person, case) if endpoint.body else None
    if path.startswith("/fhir"):
        headers["Accept"] = "application/fhir+json"
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
            return client.open(path, method=endpoint.method, headers=headers,
                               data=json.dumps(body))
    return client.open(path, method=endpoint.method, headers=headers, json=body)


def _observed(response: Any, endpoint: Endpoint, case: Case) -> str:
    status = response.status_code
    if status == 404:
        return "absent"
    if status == 403:
        return "forbidden"
    if endpoint.path == "/api/patients":  # a list: present or not
        return "ok" if any(p["id"] == case.id for p in response.get_json()) else "absent"
    if endpoint.search and status == 200:
        return "ok" if response.get_json().get("total", 0) or response.get_json().get(
            "entry") else "absent"
    if status in (WRITE_OK if endpoint.method != "GET" else {200}):
        return "ok"
    if status == 302 and response.headers["Location"].endswith("/me"):
        return "ok"  # a patient's own overview is their /me page
    return f"HTTP {status}: {response.get_data(as_text=True)[:200]}"


def _expected(person: Person, endpoint: Endpoint, case: Case) -> str:
    expected = allowed(person, endpoint.action, case)
    if person.role == "admin" or (person.role == "patient" and endpoint.clinicians_only):
        return "absent"
    if endpoint.path == "/api/patients" and expected == "forbidden":
        return "ok"  # a list shows whom one may see; reading is what it needs
    if endpoint.search and expected == "forbidden":
        return "absent"  # a search finds nothing rather than refusing
    return expected


def test_every_role_organisation_patient_and_endpoint_gets_what_the_rules_allow(world) -> None:
    app, people, cases = world
    client = app.test_client()
    wrong = []
    for endpoint in ENDPOINTS:
        for person in people:
            for case in cases:
                got = _observed(_call(client, person, endpoint, case), endpoint, case)
                want = _expected(person, endpoint, case)
                if got != want:
                    wrong.append(f"{endpoint.name}: {person.username} → {case.cpr}: "
                                 f"got {got}, want {want}")
    assert not wrong, f"{len(wrong)} cells differ:\n" + "\n".join(wrong[:400])


def test_the_patients_own_pages_open_for_patients_only(world) -> None:
    app, people, _cases = world
    client = app.test_client()
    wrong = []
    for path in PATIENT_ENDPOINTS:
        for person in people:
            status = client.get(path, headers={"Authorization": f"Bearer {person.token}"})
            want = 200 if person.role == "patient" else 404
            if status.status_code != want:
                wrong.append(f"{path}: {person.username}: got {status.status_code}, want {want}")
    assert not wrong, "\n".join(wrong)


def test_live_events_reach_exactly_the_users_who_may_see_the_patient(world, engine) -> None:
    _app, people, cases = world
    with Session(engine) as session:
        teams = team_organizations(session, [c.id for c in cases])
        users = {u.username: u for u in session.exec(select(User))}
        patients = {p.id for p in session.exec(select(Patient))}
    assert {c.id for c in cases} <= patients
    wrong = []
    for case in cases:
        rooms = set(events.rooms_for(case.id, teams.get(case.id, [])))
        for person in people:
            hears = bool(rooms & set(rooms_of(users[person.username])))
            sees = allowed(person, "read", case) == "ok"
            if hears != sees:
                wrong.append(f"{person.username} → {case.cpr}: hears {hears}, may see {sees}")
    assert not wrong, "\n".join(wrong)
