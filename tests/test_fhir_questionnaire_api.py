"""The /fhir door for Questionnaire and QuestionnaireResponse, on both database backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, col, select
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.fhir.validation import validate_resource
from telekol.server.ingest.self_report import QuestionnaireService
from telekol.server.models import StoredResource
from telekol.server.web import create_app

from tests.test_fhir_api import Fhir
from tests.test_questionnaire_payload import CAT, DIARY

CAT_URL, DIARY_URL = QUESTIONNAIRES["cat"].url, QUESTIONNAIRES["copd-symptoms"].url
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def app(engine, demo, settings):
    """Return an app whose patient 0 answered the CAT on three days and the diary once."""
    patient = demo["patients"][0]["id"]
    for day, (kind, answers) in enumerate([("cat", CAT), ("cat", {**CAT, "cough": 5}),
                                           ("copd-symptoms", DIARY), ("cat", CAT)]):
        moment = START + timedelta(days=day)
        QuestionnaireService(engine, clock=lambda m=moment: m).submit(patient, kind, answers)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


@pytest.fixture
def fhir(app) -> Fhir:
    """Return a client signed in as a nurse on patient 0's care team."""
    return Fhir(app)


def response_ids(app, kind: str | None = None) -> list[str]:
    """Return the stored response ids, newest first (optionally of one questionnaire)."""
    with Session(app.config["engine"]) as session:
        rows = session.exec(select(StoredResource).where(
            StoredResource.resource_type == "QuestionnaireResponse").order_by(
            col(StoredResource.effective).desc())).all()
    url = QUESTIONNAIRES[kind].url if kind else None
    return [r.id for r in rows if url is None or json.loads(r.resource)["questionnaire"] == url]


def matches(bundle: dict) -> list[dict]:
    """Return the validated match resources of a searchset Bundle."""
    validate_resource(bundle)
    found = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
    return [validate_resource(r) for r in found]


@pytest.mark.parametrize("kind", sorted(QUESTIONNAIRES))
def test_each_questionnaire_is_readable_with_a_stable_meta_and_etag(app, kind: str) -> None:
    first, again = Fhir(app).get(f"Questionnaire/{kind}"), Fhir(app, "patient.karen").get(
        f"Questionnaire/{kind}")
    resource = validate_resource(first.get_json())
    assert first.status_code == again.status_code == 200
    assert resource["id"] == kind and resource["url"] == QUESTIONNAIRES[kind].url
    assert resource["meta"] == again.get_json()["meta"]
    assert resource["meta"]["lastUpdated"] and resource["meta"]["versionId"]
    assert first.headers["ETag"] == f'W/"{resource["meta"]["versionId"]}"'


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["cat", "copd-symptoms"]), (f"url={CAT_URL}", ["cat"]),
    (f"url={CAT_URL},{DIARY_URL}", ["cat", "copd-symptoms"]), ("url=https://x.dk/Q/cat", []),
    ("name=copd", ["copd-symptoms"]), ("name=CAT", ["cat"]),
    ("status=active", ["cat", "copd-symptoms"]),
    ("status=retired", []), ("_id=copd-symptoms", ["copd-symptoms"]),
])
def test_questionnaire_search(fhir: Fhir, query: str, expected: list[str]) -> None:
    bundle = fhir.get(f"Questionnaire?{query}").get_json()
    assert [q["id"] for q in matches(bundle)] == expected
    assert bundle["total"] == len(expected)


def test_questionnaire_search_pages_and_refuses_what_it_cannot_do(fhir: Fhir) -> None:
    first = fhir.get("Questionnaire?_count=1").get_json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = fhir.get(following.split("/fhir/", 1)[1]).get_json()
    assert [q["id"] for q in matches(first) + matches(second)] == ["cat", "copd-symptoms"]
    assert not any(link["relation"] == "next" for link in second["link"])
    assert fhir.get("Questionnaire/nope").status_code == 404
    assert fhir.get("Questionnaire?title=CAT").status_code == 400
    assert fhir.get("Questionnaire?_cursor=junk").status_code == 400


@pytest.mark.parametrize("username", ["nurse.aalby", "doctor.hospital", "gp.torvet",
                                      "patient.karen"])
def test_the_care_team_and_the_patient_read_a_stored_response(app, username: str) -> None:
    ident = response_ids(app, "cat")[0]
    response = Fhir(app, username).get(f"QuestionnaireResponse/{ident}")
    resource = validate_resource(response.get_json())
    assert response.status_code == 200
    assert resource["id"] == ident and resource["questionnaire"] == CAT_URL
    patient = app.config["fixture"]["patients"][0]["id"]
    assert resource["subject"]["reference"] == f"Patient/{patient}"
    assert response.headers["ETag"] == 'W/"1"' == f'W/"{resource["meta"]["versionId"]}"'


@pytest.mark.parametrize("username", ["nurse.boestrup", "gp.skovvej", "admin"])
def test_an_outside_organisation_sees_no_response_at_all(app, username: str) -> None:
    fhir, ident = Fhir(app, username), response_ids(app)[0]
    seen, absent = fhir.get(f"QuestionnaireResponse/{ident}"), fhir.get(
        "QuestionnaireResponse/no-such-response")
    assert seen.status_code == absent.status_code == 404
    assert validate_resource(seen.get_json())["resourceType"] == "OperationOutcome"
    assert seen.get_data().replace(ident.encode(), b"X") == absent.get_data().replace(
        b"no-such-response", b"X")
    bundle = fhir.get(f"QuestionnaireResponse?patient={fhir.patient}").get_json()
    assert bundle["total"] == 0 and matches(bundle) == []


@pytest.mark.parametrize(("query", "kind", "count"), [
    ("", None, 4), (f"questionnaire={CAT_URL}", "cat", 3),
    (f"questionnaire={DIARY_URL}", "copd-symptoms", 1),
    ("questionnaire=Questionnaire/cat", "cat", 3),
    ("questionnaire=copd-symptoms", "copd-symptoms", 1),
    (f"questionnaire={CAT_URL},{DIARY_URL}", None, 4),
    ("questionnaire=https://elsewhere.dk/Questionnaire/cat", None, 0),
    (f"questionnaire={CAT_URL}|2", None, 0), ("questionnaire=nope", None, 0),
    ("authored=ge2025-03-03", None, 2), ("authored=lt2025-03-02T09:00:00%2B01:00", None, 1),
    (f"questionnaire={CAT_URL}&authored=2025-03-02", "cat", 1),
])
def test_response_search_narrows_by_questionnaire_and_authored(
        app, fhir: Fhir, query: str, kind: str | None, count: int) -> None:
    for name in ("patient", "subject"):
        bundle = fhir.get(f"QuestionnaireResponse?{name}=Patient/{fhir.patient}&{query}").get_json()
        found = matches(bundle)
        assert bundle["total"] == len(found) == count
        assert all(r["resourceType"] == "QuestionnaireResponse" for r in found)
        if kind and "authored" not in query:
            assert [r["id"] for r in found] == response_ids(app, kind)


@pytest.mark.parametrize("sort", ["-authored", "authored", "_id", "-_lastUpdated"])
def test_response_paging_follows_next_and_previous_links(app, fhir: Fhir, sort: str) -> None:
    everything = [r["id"] for r in matches(fhir.get(
        f"QuestionnaireResponse?patient={fhir.patient}&_sort={sort}").get_json())]
    pages, path = [], f"QuestionnaireResponse?patient={fhir.patient}&_sort={sort}&_count=3"
    while path:
        bundle = fhir.get(path).get_json()
        pages.append([r["id"] for r in matches(bundle)])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        path = urlsplit(following[0]).path.removeprefix("/fhir/") + "?" + urlsplit(
            following[0]).query if following else ""
    assert [i for page in pages for i in page] == everything and len(pages) == 2
    if sort == "-authored":
        assert everything == response_ids(app)
    previous = next(link["url"] for link in bundle["link"] if link["relation"] == "previous")
    back = fhir.get(previous.split("/fhir/", 1)[1]).get_json()
    assert [r["id"] for r in matches(back)] == pages[0]


@pytest.mark.parametrize("query", ["_sort=date", "status=completed", "_cursor=junk",
                                   "patient=Observation/1", "authored=yesterday"])
def test_a_response_search_the_server_cannot_honour_is_a_400(fhir: Fhir, query: str) -> None:
    response = fhir.get(f"QuestionnaireResponse?{query}")
    assert response.status_code == 400
    assert validate_resource(response.get_json())["resourceType"] == "OperationOutcome"


def test_without_a_token_questionnaires_and_responses_answer_401(app) -> None:
    for path in ("Questionnaire", "Questionnaire/cat", "QuestionnaireResponse",
                 f"QuestionnaireResponse/{response_ids(app)[0]}"):
        assert app.test_client().get(f"/fhir/{path}").status_code == 401


def test_everything_holds_the_questionnaire_responses(app, fhir: Fhir) -> None:
    bundle = validate_resource(fhir.get(f"Patient/{fhir.patient}/$everything").get_json())
    resources = [validate_resource(e["resource"]) for e in bundle["entry"]]
    held = {r["id"] for r in resources if r["resourceType"] == "QuestionnaireResponse"}
    assert held == set(response_ids(app))
    scores = [r for r in resources if r["resourceType"] == "Observation"
              and r.get("derivedFrom", [{}])[0].get("reference", "").startswith("Questionnaire")]
    assert {s["derivedFrom"][0]["reference"].split("/")[1] for s in scores} == held


def test_the_capability_statement_lists_the_questionnaire_interactions(app) -> None:
    statement = validate_resource(app.test_client().get("/fhir/metadata").get_json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for kind, params in (("Questionnaire", {"url", "name", "status", "_id"}),
                         ("QuestionnaireResponse", {"patient", "subject", "questionnaire",
                                                    "authored", "_id"})):
        assert {i["code"] for i in resources[kind]["interaction"]} == {"read", "search-type"}
        assert {p["name"] for p in resources[kind]["searchParam"]} == params
