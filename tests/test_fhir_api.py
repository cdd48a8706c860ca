"""The /fhir door in-process: every search parameter, errors, conditional create, Provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select
from telekol.fhir.codes import OBSERVATION_KEY_SYSTEM
from telekol.fhir.validation import validate_resource
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Alert
from telekol.server.web import create_app

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05"]


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on a seeded database holding five days of SpO2 and pulse for patient 0."""
    device = demo["devices"][0]
    payload = [{"msg_id": f"m{i}", "taken_at": f"{day}T08:00:00Z",
                "readings": [{"code": "spo2", "value": 90 + i, "unit": "%"},
                             {"code": "pulse", "value": 70 + i}]} for i, day in enumerate(DAYS)]
    received = datetime(2025, 3, 6, tzinfo=UTC)
    items = parse_measurements(json.dumps(payload).encode(), received)
    IngestService(engine).ingest([ParsedDelivery("t", device["device_id"], received, items)])
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


class Fhir:
    """A FHIR client on the test app, signed in with a bearer token."""

    def __init__(self, app, username: str = "nurse.aalby") -> None:
        self.client = app.test_client()
        token = self.client.post("/api/auth/token", json={
            "username": username, "password": DEMO_PASSWORD}).get_json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.patient = app.config["fixture"]["patients"][0]["id"]

    def get(self, path: str, **headers: str):
        """GET a /fhir path."""
        return self.client.get(f"/fhir/{path}", headers={**self.headers, **headers})

    def post(self, body: object, **headers: str):
        """POST an Observation as FHIR JSON."""
        return self.client.post("/fhir/Observation", data=json.dumps(body), headers={
            **self.headers, "Content-Type": "application/fhir+json", **headers})

    def ids(self, query: str) -> list[str]:
        """Return the ids of the matches of an Observation search of patient 0."""
        bundle = self.get(f"Observation?patient={self.patient}&{query}").get_json()
        return [e["resource"]["id"] for e in bundle.get("entry", [])
                if e["search"]["mode"] == "match"]


@pytest.fixture
def fhir(app) -> Fhir:
    """Return a client signed in as a nurse on patient 0's care team."""
    return Fhir(app)


def reported(patient: str, value: float = 85, **extra: object) -> dict:
    """Return an Observation a clinician posts for a reading told by telephone."""
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "59408-5"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": "2025-03-07T09:30:00+01:00",
            "valueQuantity": {"value": value, "unit": "%", "system": UCUM, "code": "%"}, **extra}


@pytest.mark.parametrize(("query", "count"), [
    ("", 10), ("code=http://loinc.org|2708-6", 5), ("code=http://loinc.org|59408-5", 5),
    ("code=urn:iso:std:iso:11073:10101|149530", 5), ("code=8867-4", 5),
    ("code=http://loinc.org|8867-4,http://loinc.org|2708-6", 10), ("code=http://loinc.org|0-0", 0),
    ("date=2025-03-03", 2), ("date=eq2025-03-03", 2), ("date=ne2025-03-03", 8),
    ("date=lt2025-03-03", 4), ("date=le2025-03-03", 6), ("date=gt2025-03-03", 4),
    ("date=ge2025-03-03", 6), ("date=ge2025-03-02&date=lt2025-03-04", 4),
    ("date=ge2025-03-03T09:00:00%2B01:00", 6), ("date=2025-03", 10), ("date=2024", 0),
    ("status=final", 10), ("status=preliminary", 0),
    ("_lastUpdated=ge2025-03-06", 10), ("_lastUpdated=lt2025-03-06", 0),
    (f"identifier={OBSERVATION_KEY_SYSTEM}|hub-0001-m2-spo2", 1),
    ("identifier=hub-0001-m2-pulse", 1), ("identifier=hub-0001-m2-nothing", 0),
])
def test_each_observation_search_parameter_narrows_the_result(fhir: Fhir, query: str,
                                                              count: int) -> None:
    assert len(fhir.ids(f"_count=100&{query}")) == count


@pytest.mark.parametrize("subject", ["patient={id}", "subject=Patient/{id}",
                                     "subject=http://x/fhir/Patient/{id}"])
def test_patient_and_subject_name_the_same_patient(fhir: Fhir, subject: str) -> None:
    bundle = fhir.get("Observation?" + subject.format(id=fhir.patient)).get_json()
    assert bundle["total"] == 10


@pytest.mark.parametrize("query", ["_summary=count", "_count=0"])
def test_a_count_only_search_returns_the_total_without_entries(fhir: Fhir, query: str) -> None:
    bundle = fhir.get(f"Observation?patient={fhir.patient}&{query}").get_json()
    assert bundle["total"] == 10 and "entry" not in bundle


@pytest.mark.parametrize(("include", "kind"), [("Observation:patient", "Patient"),
                                               ("Observation:subject", "Patient"),
                                               ("Observation:device", "Device")])
def test_include_adds_the_referenced_resource_once(fhir: Fhir, include: str, kind: str) -> None:
    bundle = fhir.get(f"Observation?patient={fhir.patient}&_include={include}").get_json()
    extra = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["resourceType"] for e in extra] == [kind]
    assert bundle["total"] == 10


@pytest.mark.parametrize(("sort", "reverse"), [("-date", True), ("date", False),
                                               ("_id", False), ("-_lastUpdated", True)])
def test_paging_follows_next_and_previous_links_in_sort_order(fhir: Fhir, sort: str,
                                                              reverse: bool) -> None:
    everything = fhir.ids(f"_sort={sort}&_count=100")
    url = f"Observation?patient={fhir.patient}&_sort={sort}&_count=3"
    pages = []
    while url:
        bundle = fhir.get(url.removeprefix("http://localhost/fhir/")).get_json()
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
        assert bundle["total"] == 10
    assert [i for page in pages for i in page] == everything
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    back = next(x["url"] for x in bundle["link"] if x["relation"] == "previous")
    assert [e["resource"]["id"] for e in fhir.get(back.removeprefix(
        "http://localhost/fhir/")).get_json()["entry"]] == pages[-2]
    if sort.lstrip("-") == "date":
        dates = [fhir.get(f"Observation/{i}").get_json()["effectiveDateTime"] for i in everything]
        assert dates == sorted(dates, reverse=reverse)


@pytest.mark.parametrize("query", [
    "Observation?foo=1", "Observation?date=yesterday", "Observation?date=2025-02-30",
    "Observation?_sort=value", "Observation?_cursor=bm9wZQ", "Observation?_count=-1",
    "Observation?_summary=text", "Observation?_include=Observation:performer",
    "Observation?patient=Device/x", "Patient?name=x", "Organization?foo=1",
    "PractitionerRole?_include=PractitionerRole:location", "Provenance?target=Patient/x",
])
def test_a_search_the_server_cannot_honour_is_a_400_operation_outcome(fhir: Fhir,
                                                                       query: str) -> None:
    response = fhir.get(query)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["code"] == "invalid"


def test_without_a_token_every_resource_answers_401(app) -> None:
    for path in ("Patient", "Observation", "Organization", "Practitioner", "Provenance"):
        response = app.test_client().get(f"/fhir/{path}")
        assert response.status_code == 401
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("kind", ["Patient", "Patient/{id}/$everything"])
def test_an_invisible_patient_looks_exactly_like_a_missing_one(app, kind: str) -> None:
    fhir = Fhir(app, "doctor.hospital")
    hidden = app.config["fixture"]["patients"][1]["id"]  # not on the hospital's care team
    path = kind if "{id}" in kind else f"{kind}/{{id}}"
    seen = fhir.get(path.format(id=hidden))
    absent = fhir.get(path.format(id="no-such-patient"))
    assert seen.status_code == absent.status_code == 404
    assert seen.get_data().replace(hidden.encode(), b"X") == absent.get_data().replace(
        b"no-such-patient", b"X")


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("get", "metadata", {"Accept": "application/fhir+xml"}, 406),
    ("get", "Patient?_format=xml", {}, 406),
    ("get", "Patient?_format=json", {}, 200),
    ("delete", "Patient/x", {}, 405),
    ("get", "Encounter", {}, 404),
    ("post", "Observation", {"Content-Type": "text/plain"}, 415),
    ("post", "Observation", {"Content-Type": "application/xml"}, 415),
])
def test_protocol_errors_are_operation_outcomes(fhir: Fhir, method: str, path: str,
                                                headers: dict, status: int) -> None:
    response = getattr(fhir.client, method)(f"/fhir/{path}", data="{}",
                                            headers={**fhir.headers, **headers})
    assert response.status_code == status
    if status >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["Patient/{patient}", "Device/hub-0001", "Organization/muni-aalby",
                                  "Practitioner/2", "PractitionerRole/2", "Observation/{obs}"])
def test_every_read_carries_meta_and_an_etag(fhir: Fhir, path: str) -> None:
    obs = fhir.ids("_count=1")[0]
    response = fhir.get(path.format(patient=fhir.patient, obs=obs))
    resource = validate_resource(response.get_json())
    assert resource["meta"]["versionId"]
    assert response.headers["ETag"] == f'W/"{resource["meta"]["versionId"]}"'
    assert "lastUpdated" in resource["meta"] or resource["resourceType"] == "Organization"


@pytest.mark.parametrize(("query", "expected"), [
    ("Patient?identifier=urn:oid:1.2.208.176.1.2|0101419996", 1),
    ("Patient?identifier=0101419996", 1), ("Patient?identifier=urn:other|0101419996", 0),
    ("Organization?identifier=urn:oid:1.2.208.176.1.1|900000000000021", 1),
    ("Organization?identifier=900000000000021", 1), ("Organization?name=hjemmesyge", 2),
    ("Organization?name=Lægerne", 1), ("Organization?_id=gp-torvet,gp-skovvej", 2),
    ("Organization", 5), ("Practitioner?organization=Organization/muni-aalby", 1),
    ("Practitioner?_id=2", 1), ("Practitioner", 5), ("PractitionerRole?organization=gp-torvet", 1),
    ("PractitionerRole?practitioner=Practitioner/1", 1),
])
def test_directory_and_patient_searches(fhir: Fhir, query: str, expected: int) -> None:
    bundle = fhir.get(query).get_json()
    assert bundle["total"] == expected
    for entry in bundle.get("entry", []):
        validate_resource(entry["resource"])


def test_an_organisation_read_gives_the_phone_number_its_patients_call(fhir: Fhir) -> None:
    org = fhir.get("Organization/muni-aalby").get_json()
    assert org["telecom"] == [{"system": "phone", "value": "+4572000021", "use": "work"}]


def test_a_role_links_its_practitioner_and_organisation_and_can_include_both(fhir: Fhir) -> None:
    bundle = fhir.get("PractitionerRole?organization=muni-aalby&_include=PractitionerRole:"
                      "practitioner&_include=PractitionerRole:organization").get_json()
    kinds = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]
    assert kinds == [("PractitionerRole", "match"), ("Practitioner", "include"),
                     ("Organization", "include")]
    role = bundle["entry"][0]["resource"]
    assert role["organization"] == {"reference": "Organization/muni-aalby"}
    assert role["code"][0]["coding"][0]["code"] == "nurse"


def test_organisations_carry_their_sor_identifier(fhir: Fhir) -> None:
    org = fhir.get("Organization/hosp-lung").get_json()
    assert org["identifier"] == [{"use": "official", "system": "urn:oid:1.2.208.176.1.1",
                                  "value": "900000000000011"}]


def test_a_patient_may_not_browse_the_directory(app) -> None:
    assert Fhir(app, "patient.karen").get("Organization").status_code == 403


def test_a_telephone_reading_is_stored_like_a_device_reading_and_triaged(app, fhir: Fhir) -> None:
    response = fhir.post(reported(fhir.patient, 85))
    assert response.status_code == 201
    stored = response.get_json()
    assert response.headers["Location"].endswith(f"/Observation/{stored['id']}/_history/1")
    assert response.headers["ETag"] == 'W/"1"'
    device_made = fhir.get(f"Observation/{fhir.ids('code=2708-6&_count=1')[0]}").get_json()
    for key in ("code", "category", "status"):
        assert stored[key] == device_made[key]
    assert stored["meta"]["profile"] == device_made["meta"]["profile"]
    assert stored["referenceRange"] == device_made["referenceRange"]
    assert stored["interpretation"][0]["coding"][0]["code"] == "LL"
    assert "device" not in stored
    assert stored["performer"][0] == {"reference": "Practitioner/2",
                                      "display": "Sygeplejerske Mette Holm"}
    assert fhir.get(f"Observation/{stored['id']}").get_json() == stored
    with Session(app.config["engine"]) as session:
        # One unresolved alert per patient and rule: a repeat updates it, pointing at the
        # latest reading (the fixture may already hold a red SpO2 for this patient).
        alert = session.exec(select(Alert).where(
            Alert.last_observation_id == stored["id"])).one()
    assert alert.severity == "red" and "85" in alert.reason


def test_the_provenance_names_who_entered_a_reading_and_how(fhir: Fhir) -> None:
    stored = fhir.post(reported(fhir.patient, 95)).get_json()
    bundle = fhir.get(f"Provenance?target=Observation/{stored['id']}").get_json()
    assert bundle["total"] == 1
    provenance = validate_resource(bundle["entry"][0]["resource"])
    assert provenance["target"] == [{"reference": f"Observation/{stored['id']}"}]
    enterer, informant = provenance["agent"]
    assert enterer["type"]["coding"][0]["code"] == "enterer"
    assert enterer["who"]["reference"] == "Practitioner/2"
    assert enterer["onBehalfOf"] == {"reference": "Organization/muni-aalby"}
    assert informant["who"] == {"reference": f"Patient/{fhir.patient}"}
    assert provenance["activity"]["text"] == "verbal report by telephone"
    assert provenance["recorded"] == stored["issued"]
    assert fhir.get(f"Provenance/{provenance['id']}").get_json() == provenance


def test_a_blood_pressure_reading_is_entered_as_components(fhir: Fhir) -> None:
    body = reported(fhir.patient, code={"coding": [{"system": LOINC, "code": "85354-9"}]},
                    component=[{"code": {"coding": [{"system": LOINC, "code": code}]},
                                "valueQuantity": {"value": value, "system": UCUM, "code": unit}}
                               for code, value, unit in (("8480-6", 18, "kPa"),
                                                         ("8462-4", 80, "mm[Hg]"))])
    del body["valueQuantity"]
    stored = fhir.post(body).get_json()
    assert [c["valueQuantity"]["value"] for c in stored["component"]] == [135, 80]


@pytest.mark.parametrize(("change", "reason"), [
    ({"code": {"coding": [{"system": LOINC, "code": "1234-5"}]}}, "code"),
    ({"valueQuantity": {"value": 85, "system": UCUM, "code": "kg"}}, "unit"),
    ({"valueQuantity": {"value": 101, "system": UCUM, "code": "%"}}, "plausible"),
    ({"valueQuantity": {"value": 95}}, "unit"),
    ({"effectiveDateTime": "2099-01-01T00:00:00Z"}, "future"),
    ({"effectiveDateTime": "2025-03-07"}, "RFC 3339"),
    ({"status": "preliminary"}, "final"),
    ({"subject": {"reference": "Device/hub-0001"}}, "Patient"),
    ({"identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}]},
     "at most one"),
    ({"status": 7}, "valid FHIR"),
])
def test_a_reading_that_cannot_be_stored_is_a_422(fhir: Fhir, change: dict, reason: str) -> None:
    response = fhir.post({**reported(fhir.patient), **change})
    assert response.status_code == 422
    assert reason in response.get_json()["issue"][0]["diagnostics"]
    assert len(fhir.ids("_count=100")) == 10


def test_a_reading_for_an_invisible_patient_is_a_404(app) -> None:
    fhir = Fhir(app, "doctor.hospital")
    hidden = app.config["fixture"]["patients"][1]["id"]
    response = fhir.post(reported(hidden))
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize(("username", "status"), [
    ("patient.karen", 403),  # sees herself, enters through her own pages
    ("admin", 404),  # sees no patient at all: as if absent
])
def test_only_clinicians_may_enter_readings(app, username: str, status: int) -> None:
    fhir = Fhir(app, username)
    response = fhir.post(reported(app.config["fixture"]["patients"][0]["id"]))
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_cookie_session_cannot_write(app) -> None:
    from tests.test_web import log_in

    client = app.test_client()
    log_in(client)
    patient = app.config["fixture"]["patients"][0]["id"]
    response = client.post("/fhir/Observation", data=json.dumps(reported(patient)),
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 403
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_conditional_create_returns_the_existing_reading(fhir: Fhir) -> None:
    body = reported(fhir.patient, identifier=[{"system": "urn:ehr:calls", "value": "c-17"}])
    condition = {"If-None-Exist": "identifier=urn:ehr:calls|c-17"}
    first = fhir.post(body, **condition)
    again = fhir.post(body, **condition)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert fhir.ids("identifier=urn:ehr:calls|c-17") == [first.get_json()["id"]]
    assert fhir.post(body).status_code == 409  # the same identifier without the condition


def test_conditional_create_matching_several_is_a_412(fhir: Fhir) -> None:
    response = fhir.post(reported(fhir.patient),
                         **{"If-None-Exist": f"patient={fhir.patient}&code=2708-6"})
    assert response.status_code == 412
    assert response.get_json()["issue"][0]["code"] == "multiple-matches"


def test_the_capability_statement_lists_exactly_what_is_implemented(app) -> None:
    statement = validate_resource(app.test_client().get("/fhir/metadata").get_json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Patient", "Observation", "Device", "Organization",
                              "Practitioner", "PractitionerRole", "Provenance",
                              "Questionnaire", "QuestionnaireResponse", "Task", "AuditEvent",
                              "EpisodeOfCare", "CareTeam", "Consent", "CarePlan"}
    observation = resources["Observation"]
    assert {i["code"] for i in observation["interaction"]} == {"read", "search-type", "create"}
    assert observation["conditionalCreate"] is True
    assert {p["name"] for p in observation["searchParam"]} == {
        "patient", "subject", "code", "date", "identifier", "status", "_lastUpdated", "_id"}
    assert "Observation:device" in observation["searchInclude"]


def test_everything_holds_the_patient_devices_observations_and_provenance(fhir: Fhir) -> None:
    fhir.post(reported(fhir.patient, 95))
    bundle = fhir.get(f"Patient/{fhir.patient}/$everything").get_json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Patient" and "Device" in kinds and "Provenance" in kinds
    assert kinds.count("Observation") == 11
