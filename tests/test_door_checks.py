"""The one validation at the doors (server/web/door_checks.py): the review's hostile requests
get 400 with a reason (OperationOutcome on /fhir), never 500; unexpected failures on /fhir are
OperationOutcomes; failed requests that name a patient are still audited."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select
from telekol.server.models import AuditRecord
from telekol.server.web import create_app
from telekol.server.web.door_checks import MAX_DEPTH, json_problem, value_problem

from tests.test_audit_api import bearer


@pytest.fixture
def app(engine, settings):
    """Return the app on the demo database (no broker bridge)."""
    url = engine.url.render_as_string(hide_password=False)
    return create_app(settings.with_overrides(database_url=url), live=False)


def patient_of(demo, name: str) -> str:
    return next(p["id"] for p in demo["patients"] if p["name"].startswith(name))


@pytest.mark.parametrize(("path", "reason"), [
    ("/api/alerts?since=²", "digits 0-9"),  # "²".isdigit() is True, int("²") fails
    ("/api/alerts?since=٣٤", "digits 0-9"),
    ("/api/alerts?limit=99999999999999999999", "out of range"),
    ("/api/alerts?since=9999-12-31T23:59:59-14:00", "date is out of range"),
    ("/api/audit?before=9223372036854775808", "out of range"),
    ("/fhir/Observation?patient={karen}&date=ge9999-12-31T23:59:59-14:00", "out of range"),
    ("/fhir/Observation?patient={karen}&_count=²", "digits 0-9"),
    ("/fhir/AuditEvent?_id=99999999999999999999", "out of range"),
    ("/fhir/Patient?identifier=%00", "NUL"),
])
def test_hostile_query_values_get_400_with_the_reason(app, demo, path, reason) -> None:
    url = path.format(karen=patient_of(demo, "Karen"))
    response = app.test_client().get(url, headers=bearer(app, "admin" if "audit?" in path
                                                           else "nurse.aalby"))
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    said = body["issue"][0]["diagnostics"] if url.startswith("/fhir") else body["error"]
    assert reason in said
    if url.startswith("/fhir"):
        assert body["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", [
    "/api/alerts/9223372036854775808/resolve", "/api/alerts/2147483648/resolve",
    "/api/handovers/111111111111111111111111111111/withdraw"])
def test_integers_beyond_the_databases_ids_are_absent_not_a_failure(app, path) -> None:
    response = app.test_client().post(path, headers=bearer(app, "nurse.aalby"), json={})
    assert response.status_code == 404 and "error" in response.get_json()


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
@pytest.mark.parametrize("path", ["/api/alerts/1/resolve", "/fhir/Observation",
                                  "/api/auth/token"])
def test_deeply_nested_json_gets_400(app, path, content_type) -> None:
    body = "[" * 100000 + "]" * 100000
    response = app.test_client().post(path, data=body, content_type=content_type,
                                      headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 400
    said = response.get_data(as_text=True)
    assert f"nested deeper than {MAX_DEPTH}" in said
    if path.startswith("/fhir"):
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_list_where_an_object_is_expected_gets_400(app, demo) -> None:
    karen = patient_of(demo, "Karen")
    response = app.test_client().post(f"/api/patients/{karen}/alerts/acknowledge",
                                      json=["note"], headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 400 and "JSON object" in response.get_json()["error"]


@pytest.mark.parametrize(("value", "refused"), [
    ("12", False), ("-1", False), ("1.5", False), ("2026-11-25T07:31:00+01:00", False),
    ("ge2026-11-25", False), ("m²", False), ("0-7", False), ("Patient/abc", False),
    ("٣", True), ("²", True), ("1٣", True), ("ge²", True), ("9223372036854775807", False),
    ("9223372036854775808", True), ("-9223372036854775809", True), ("10000-01-01", True),
    ("0999-12-31", True), ("a\x00b", True),
])
def test_values_are_judged_by_one_rule(value: str, refused: bool) -> None:
    assert bool(value_problem(value)) is refused


def test_json_is_judged_by_depth_numbers_and_constants() -> None:
    assert json_problem(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not json_problem(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert not json_problem(b'{"note": "' + b"[" * 100 + b'"}')  # brackets in a string
    assert json_problem(b'{"minutes": 9223372036854775808}')
    assert json_problem(b'{"value": NaN}') and json_problem(b"[Infinity]")
    assert not json_problem(b"not json")  # the view says what is wrong with it


@pytest.fixture
def failing_app(app):
    """The app with a hook that fails for one query value, before any view runs."""
    def explode() -> None:
        from flask import request

        if request.args.get("explode"):
            raise RuntimeError("an unexpected failure")

    app.before_request_funcs.setdefault(None, []).insert(0, explode)
    return app


def test_an_unexpected_failure_on_fhir_is_an_operation_outcome(failing_app, demo) -> None:
    karen = patient_of(demo, "Karen")
    response = failing_app.test_client().get(f"/fhir/Patient/{karen}?explode=1",
                                             headers=bearer(failing_app, "nurse.aalby"))
    assert response.status_code == 500 and response.mimetype == "application/fhir+json"
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "exception"
    api = failing_app.test_client().get("/api/alerts?explode=1",
                                        headers=bearer(failing_app, "nurse.aalby"))
    assert api.status_code == 500 and "error" in api.get_json()


def _records_for(engine, patient: str) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).where(
            col(AuditRecord.patient_id) == patient).order_by(col(AuditRecord.id))).all())


@pytest.mark.parametrize(("query", "status"), [("explode=1", 500), ("_count=²", 400)])
def test_a_request_that_fails_before_its_view_is_audited_for_the_patient_it_names(
        failing_app, engine, demo, query, status) -> None:
    karen = patient_of(demo, "Karen")
    before = len(_records_for(engine, karen))
    response = failing_app.test_client().get(f"/fhir/Observation?patient={karen}&{query}",
                                             headers=bearer(failing_app, "nurse.aalby"))
    assert response.status_code == status
    rows = _records_for(engine, karen)[before:]
    assert [(r.username, r.outcome, r.status, r.door, r.detail) for r in rows] == [
        ("nurse.aalby", "failed", status, "fhir", "failed")]


def test_a_refused_request_with_nul_in_its_path_is_still_audited(app, engine, demo) -> None:
    karen = patient_of(demo, "Karen")
    before = len(_records_for(engine, karen))
    response = app.test_client().get(f"/patients/{karen}/phone/questionnaire/%00",
                                     headers=bearer(app, "nurse.aalby"))
    assert response.status_code == 404  # not 503: the record of the attempt is written
    [row] = _records_for(engine, karen)[before:]
    assert row.outcome == "denied" and row.resource.endswith("/questionnaire/\\x00")
