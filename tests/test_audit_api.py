"""The audit log over HTTP: the request hook, the administrators' search and verification,
the patient's access log, and FHIR AuditEvent."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlmodel import Session, col, select
from telekol.fhir.validation import validate_resource
from telekol.server.config import Settings
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import AuditRecord
from telekol.server.web import create_app
from telekol.server.web.auditing import note


@pytest.fixture
def app(engine, demo, settings: Settings) -> Flask:
    """Return an app on a seeded database, with two views that exist only in these tests."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config["fixture"] = demo

    def noted_then_broken(patient_id: str):  # type: ignore[no-untyped-def]
        note(patient_id, "read", f"Patient/{patient_id}")
        raise RuntimeError("the view broke after noting")

    app.add_url_rule("/api/test/broken/<patient_id>", view_func=noted_then_broken)
    return app


def patient_id(app: Flask, name: str) -> str:
    return next(p["id"] for p in app.config["fixture"]["patients"] if p["name"].startswith(name))


def bearer(app: Flask, username: str) -> dict[str, str]:
    body = app.test_client().post("/api/auth/token", json={
        "username": username, "password": DEMO_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def records(engine, after: int = 0) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).where(col(AuditRecord.id) > after)
                                 .order_by(col(AuditRecord.id))).all())


def last_id(engine) -> int:
    found = records(engine)
    return found[-1].id or 0 if found else 0


# --- the hook ----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "door", "action", "resource"), [
    ("/fhir/Patient/{karen}", "fhir", "read", "Patient/{karen}"),
    ("/fhir/Observation?patient={karen}&_count=5", "fhir", "search",
     "Observation?_count=5&patient={karen}"),
    ("/api/patients", "api", "search", "Patient"),
])
def test_a_read_is_recorded_with_who_what_and_the_door(app, engine, path, door, action,
                                                       resource) -> None:
    karen = patient_id(app, "Karen")
    response = app.test_client().get(path.format(karen=karen),
                                     headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 200
    found = [r for r in records(engine) if r.patient_id == karen]
    assert len(found) == 1
    row = found[0]
    assert (row.username, row.display_name is not None, row.role, row.organization_id) == (
        "nurse.aalby", True, "nurse", "muni-aalby")
    assert (row.door, row.action, row.resource, row.outcome, row.status) == (
        door, action, resource.format(karen=karen), "success", 200)


def test_a_list_records_every_patient_it_shows(app, engine) -> None:
    shown = app.test_client().get("/api/patients", headers=bearer(app, "nurse.aalby")).get_json()
    assert sorted(r.patient_id for r in records(engine)) == sorted(p["id"] for p in shown)


def test_a_search_by_cpr_number_keeps_the_number_out_of_the_record(app, engine) -> None:
    karen = app.config["fixture"]["patients"][0]
    response = app.test_client().get(
        f"/fhir/Patient?identifier=urn:oid:1.2.208.176.1.2|{karen['cpr']}",
        headers=bearer(app, "nurse.aalby"))
    assert response.get_json()["total"] == 1
    (row,) = records(engine)
    assert row.patient_id == karen["id"] and row.resource == "Patient?identifier"
    assert karen["cpr"] not in row.resource + row.detail


@pytest.mark.parametrize(("username", "path", "status"), [
    ("nurse.aalby", "/fhir/Patient/{else_}", 404),  # Else shares with muni-boestrup only
    ("gp.torvet", "/fhir/Observation?patient=Patient/{else_}", 200),
    ("nurse.aalby", "/api/patients/{else_}/observations?code=spo2", 404),
])
def test_a_refused_look_at_an_existing_patient_is_recorded_as_denied(app, engine, username,
                                                                     path, status) -> None:
    else_ = patient_id(app, "Else")
    response = app.test_client().get(path.format(else_=else_), headers=bearer(app, username))
    assert response.status_code == status
    found = [r for r in records(engine) if r.patient_id == else_]
    if status == 200:  # a search finds nothing: an empty answer discloses nothing
        assert found == []
        return
    assert [(r.username, r.outcome, r.status) for r in found] == [(username, "denied", 404)]


def test_a_look_at_a_patient_who_does_not_exist_writes_nothing(app, engine) -> None:
    response = app.test_client().get("/fhir/Patient/no-such-patient",
                                     headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 404 and records(engine) == []


def test_a_request_that_fails_after_noting_still_leaves_its_record(app, engine) -> None:
    karen = patient_id(app, "Karen")
    response = app.test_client().get(f"/api/test/broken/{karen}",
                                     headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 500
    (row,) = records(engine)
    assert (row.patient_id, row.outcome, row.status) == (karen, "failed", 500)


def test_an_exception_that_escapes_the_app_still_leaves_its_record(app, engine) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the after-request hooks never run
    karen = patient_id(app, "Karen")
    with pytest.raises(RuntimeError):
        app.test_client().get(f"/api/test/broken/{karen}", headers=bearer(app, "nurse.aalby"))
    (row,) = records(engine)
    assert (row.patient_id, row.outcome, row.status) == (karen, "failed", 500)


@pytest.fixture
def audit_broken(engine):
    """Make every audit write fail, as when the table cannot be written."""
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE auditrecord RENAME TO auditrecord_gone")
    yield
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE auditrecord_gone RENAME TO auditrecord")


@pytest.mark.parametrize(("path", "kind"), [
    ("/api/patients", "application/json"),
    ("/fhir/Patient/{karen}", "application/fhir+json"),
    ("/fhir/Observation?patient={karen}", "application/fhir+json"),
])
def test_no_data_leaves_when_its_audit_record_cannot_be_written(app, audit_broken, caplog,
                                                                path, kind) -> None:
    karen = patient_id(app, "Karen")
    response = app.test_client().get(path.format(karen=karen),
                                     headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 503 and response.mimetype == kind
    body = response.get_data(as_text=True)
    assert "Karen" not in body and "audit" in body
    assert "X-Content-Type-Options" in response.headers
    assert "answered 503 instead" in caplog.text and "Karen" not in caplog.text


CAT_ITEMS = ("cough", "phlegm", "chest_tightness", "breathlessness", "activities",
             "confidence", "sleep", "energy")


def form_token(html: str) -> str:
    return html.split('name="csrf_token" value="')[1].split('"')[0]


@pytest.mark.parametrize("broken", [False, True])
def test_a_page_is_recorded_or_withheld_in_plain_text(app, engine, broken: bool) -> None:
    client = app.test_client()
    client.post("/login", data={"username": "patient.karen", "password": DEMO_PASSWORD,
                                "csrf_token": form_token(client.get("/login").get_data(
                                    as_text=True))})
    form = {"csrf_token": form_token(client.get("/questionnaire/cat").get_data(as_text=True))}
    form.update(dict.fromkeys(CAT_ITEMS, "1"))
    if broken:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE auditrecord RENAME TO auditrecord_gone")
    response = client.post("/questionnaire/cat", data=form)
    if broken:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE auditrecord_gone RENAME TO auditrecord")
        assert response.status_code == 503 and response.mimetype == "text/plain"
        assert records(engine) == []
        return
    assert response.status_code == 200
    (row,) = records(engine)
    assert (row.door, row.action, row.patient_id, row.username, row.detail) == (
        "ui", "create", patient_id(app, "Karen"), "patient.karen", "questionnaire cat")


def test_a_request_that_touches_no_patient_writes_nothing(app, engine) -> None:
    client = app.test_client()
    for path in ("/fhir/metadata", "/api/inbox/unread-count", "/fhir/Organization"):
        assert client.get(path, headers=bearer(app, "gp.torvet")).status_code == 200
    assert records(engine) == []


# --- administrators: search and verify ---------------------------------------------------

def test_an_administrator_searches_the_log_and_the_search_is_recorded(app, engine) -> None:
    karen = patient_id(app, "Karen")
    client = app.test_client()
    client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "nurse.aalby"))
    client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "gp.torvet"))
    found = client.get(f"/api/audit?patient={karen}&user=gp.torvet",
                       headers=bearer(app, "admin")).get_json()
    assert [(r["username"], r["patient_id"], r["resource"]) for r in found] == [
        ("gp.torvet", karen, f"Patient/{karen}")]
    assert len(found[0]["hash"]) == 64 and found[0]["at"].endswith("Z")
    own = records(engine)[-1]
    assert (own.username, own.patient_id, own.action, own.resource) == (
        "admin", None, "search", "AuditRecord")
    assert own.detail == f"patient={karen}&user=gp.torvet"


@pytest.mark.parametrize(("query", "expected"), [
    ("door=fhir", ["fhir", "fhir"]),
    ("door=api&action=search", ["api"]),
    ("organization=gp-torvet", ["fhir"]),
    ("limit=1", ["api"]),
    ("user=nobody", []),
])
def test_the_administrators_search_filters(app, query, expected) -> None:
    karen = patient_id(app, "Karen")
    client = app.test_client()
    client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "nurse.aalby"))
    client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "gp.torvet"))
    client.get("/api/patients", headers=bearer(app, "patient.karen"))
    found = client.get(f"/api/audit?{query}", headers=bearer(app, "admin")).get_json()
    assert [r["door"] for r in found] == expected


def test_the_administrators_search_pages_with_before(app) -> None:
    client = app.test_client()
    for _ in range(3):
        client.get("/api/patients", headers=bearer(app, "patient.karen"))
    admin = bearer(app, "admin")
    first = client.get("/api/audit?limit=2", headers=admin).get_json()
    rest = client.get(f"/api/audit?before={first[-1]['id']}", headers=admin).get_json()
    assert [r["id"] for r in first + rest] == sorted({r["id"] for r in first + rest},
                                                     reverse=True)
    assert len(first + rest) == 3


@pytest.mark.parametrize("query", ["since=yesterday", "before=x", "until=2026-01-01T00:00"])
def test_a_malformed_search_gets_a_clear_400(app, query) -> None:
    response = app.test_client().get(f"/api/audit?{query}", headers=bearer(app, "admin"))
    assert response.status_code == 400 and response.get_json()["error"]


@pytest.mark.parametrize("path", ["/api/audit", "/api/audit/verify"])
@pytest.mark.parametrize("username", ["nurse.aalby", "gp.torvet", "patient.karen"])
def test_only_administrators_search_or_verify_the_log(app, path, username) -> None:
    response = app.test_client().get(path, headers=bearer(app, username))
    assert response.status_code == 403


def test_the_log_needs_a_login(app) -> None:
    assert app.test_client().get("/api/audit").status_code == 401


def test_an_administrator_verifies_the_chain_over_http(app, engine) -> None:
    client = app.test_client()
    client.get("/api/patients", headers=bearer(app, "nurse.aalby"))
    shown = len(records(engine))
    check = client.get("/api/audit/verify", headers=bearer(app, "admin")).get_json()
    assert check == {"ok": True, "checked": shown, "first_bad_id": None, "reason": "",
                     "last_hash": records(engine)[shown - 1].hash, "anchors": 0}


# --- the patient's access log ------------------------------------------------------------

def test_a_patient_sees_who_looked_at_their_data_newest_first(app) -> None:
    karen = patient_id(app, "Karen")
    client = app.test_client()
    client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "gp.torvet"))
    client.get(f"/fhir/Observation?patient={karen}", headers=bearer(app, "nurse.aalby"))
    client.get(f"/fhir/Patient/{patient_id(app, 'Poul')}", headers=bearer(app, "gp.torvet"))
    log = client.get("/api/me/access-log", headers=bearer(app, "patient.karen")).get_json()
    entries = log["entries"]
    assert [(e["who"]["role"], e["action"], e["kind"], e["door"]) for e in entries] == [
        ("nurse", "search", "Observation", "fhir"), ("gp", "read", "Patient", "fhir")]
    assert entries[0]["who"]["organization"]["name"] != "muni-aalby"  # the name, not the id
    assert entries[0]["who"]["name"] and entries[0]["at"] > entries[1]["at"]
    assert log["next_before"] is None
    again = client.get("/api/me/access-log", headers=bearer(app, "patient.karen")).get_json()
    assert again["entries"][0]["who"]["role"] == "patient"  # reading the log is recorded


def test_the_access_log_pages_with_before(app) -> None:
    karen = patient_id(app, "Karen")
    client = app.test_client()
    for _ in range(3):
        client.get(f"/fhir/Patient/{karen}", headers=bearer(app, "gp.torvet"))
    headers = bearer(app, "patient.karen")
    first = client.get("/api/me/access-log?limit=2", headers=headers).get_json()
    assert len(first["entries"]) == 2 and first["next_before"] == first["entries"][-1]["id"]
    rest = client.get(f"/api/me/access-log?limit=2&before={first['next_before']}",
                      headers=headers).get_json()
    assert [e["kind"] for e in rest["entries"]] == ["Patient"]
    assert rest["next_before"] is None


@pytest.mark.parametrize("username", ["nurse.aalby", "admin"])
def test_the_access_log_is_only_for_patient_accounts(app, username) -> None:
    response = app.test_client().get("/api/me/access-log", headers=bearer(app, username))
    assert response.status_code == 403


# --- FHIR AuditEvent ---------------------------------------------------------------------

def fhir_get(app: Flask, path: str, username: str):  # type: ignore[no-untyped-def]
    return app.test_client().get(f"/fhir/{path}", headers=bearer(app, username))


def test_a_patient_reads_their_audit_events_as_fhir(app) -> None:
    karen = patient_id(app, "Karen")
    fhir_get(app, f"Patient/{karen}", "gp.torvet")
    fhir_get(app, f"Patient/{patient_id(app, 'Poul')}", "gp.torvet")
    bundle = fhir_get(app, "AuditEvent", "patient.karen").get_json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    event = validate_resource(bundle["entry"][0]["resource"])
    assert event["type"]["code"] == "rest" and event["action"] == "R"
    assert event["outcome"] == "0" and event["recorded"].endswith("Z")
    assert event["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction",
                                   "code": "read"}
    agents = {a["who"].get("reference"): a for a in event["agent"]}
    gp = next(u for u in app.config["fixture"]["users"] if u["username"] == "gp.torvet")
    assert "Organization/gp-torvet" in agents
    assert any(a["who"]["identifier"]["value"] == "gp.torvet"
               for a in event["agent"] if "identifier" in a["who"])
    assert gp["organization"] == "gp-torvet"
    entities = [e["what"] for e in event["entity"]]
    assert {"reference": f"Patient/{karen}"} in entities
    read = fhir_get(app, f"AuditEvent/{event['id']}", "patient.karen")
    assert read.status_code == 200 and read.headers["ETag"]


def test_a_patient_does_not_see_other_patients_audit_events(app, engine) -> None:
    poul = patient_id(app, "Poul")
    fhir_get(app, f"Patient/{poul}", "gp.torvet")
    poul_record = next(r for r in records(engine) if r.patient_id == poul)
    assert fhir_get(app, f"AuditEvent?patient={poul}", "patient.karen").get_json()[
        "total"] == 0
    assert fhir_get(app, f"AuditEvent/{poul_record.id}", "patient.karen").status_code == 404


def test_an_administrator_reads_any_audit_event_and_clinicians_are_refused(app, engine) -> None:
    poul = patient_id(app, "Poul")
    fhir_get(app, f"Patient/{poul}", "gp.torvet")
    bundle = fhir_get(app, f"AuditEvent?patient={poul}&date=ge2000-01-01", "admin").get_json()
    assert bundle["total"] == 1
    for path in ("AuditEvent", f"AuditEvent/{bundle['entry'][0]['resource']['id']}"):
        response = fhir_get(app, path, "gp.torvet")
        assert response.status_code == 403
        assert response.get_json()["resourceType"] == "OperationOutcome"
    own = records(engine)[-1]  # the admin's search, not the refused reads
    assert (own.username, own.patient_id, own.resource) == ("admin", None, "AuditEvent")


def test_the_capability_statement_lists_audit_event(app) -> None:
    statement = app.test_client().get("/fhir/metadata").get_json()
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {p["name"] for p in kinds["AuditEvent"]["searchParam"]} == {"patient", "date", "_id"}
