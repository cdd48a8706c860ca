"""The care plan and threshold proposals through /api, /fhir and the pages (Flask test client)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import Session, col, select
from telekol.server.models import AuditRecord

from tests.test_care_plan import PLAN, patient_id
from tests.test_web import app, csrf_token, log_in  # noqa: F401  (app is a fixture)

PULSE = {"red_low": 40, "yellow_low": 50, "yellow_high": 110, "red_high": 130}


def bearer(app, username: str) -> dict[str, str]:  # noqa: F811
    token = app.test_client().post("/api/auth/token", json={
        "username": username, "password": "telekol-demo"}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def poul(app) -> str:  # noqa: F811
    return patient_id(app.config["fixture"])


def audit_resources(engine, pid: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord.resource).where(
            AuditRecord.patient_id == pid).order_by(col(AuditRecord.id))))


# ---- /api ----

def test_the_care_team_reads_the_current_plan_with_what_it_may_do(app, poul) -> None:  # noqa: F811
    body = app.test_client().get(f"/api/patients/{poul}/care-plan",
                                 headers=bearer(app, "nurse.aalby")).get_json()
    assert body["version"] == 1 and body["content"]["thresholds"]["spo2"]["yellow_low"] == 92
    assert body["permissions"] == {"edit": True, "set_thresholds": False, "propose": True}
    gp = app.test_client().get(f"/api/patients/{poul}/care-plan",
                               headers=bearer(app, "gp.torvet")).get_json()
    assert gp["permissions"] == {"edit": True, "set_thresholds": True, "propose": True}


@pytest.mark.parametrize("path", ["care-plan", "care-plan/versions", "care-plan/versions/1",
                                  "threshold-proposals"])
def test_someone_outside_the_team_gets_404(app, poul, path: str) -> None:  # noqa: F811
    response = app.test_client().get(f"/api/patients/{poul}/{path}",
                                     headers=bearer(app, "nurse.boestrup"))
    assert response.status_code == 404 and "error" in response.get_json()


def test_the_gp_puts_a_new_version_and_the_history_grows(app, engine, poul) -> None:  # noqa: F811
    client, headers = app.test_client(), bearer(app, "gp.torvet")
    response = client.put(f"/api/patients/{poul}/care-plan", headers=headers,
                          json={"base_version": 1, "content": PLAN})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2
    versions = client.get(f"/api/patients/{poul}/care-plan/versions", headers=headers).get_json()
    assert [v["version"] for v in versions] == [2, 1] and "content" not in versions[0]
    assert versions[0]["changed_by"]["organization"] == "gp-torvet"
    old = client.get(f"/api/patients/{poul}/care-plan/versions/1", headers=headers).get_json()
    assert old["content"]["schedules"][0]["times"] == ["09:00", "17:00"]  # the programme's
    assert client.get(f"/api/patients/{poul}/care-plan/versions/9",
                      headers=headers).status_code == 404
    resources = audit_resources(engine, poul)
    assert any(r.startswith("CarePlan/") for r in resources)


@pytest.mark.parametrize(("username", "body", "status"), [
    ("nurse.aalby", {"base_version": 1, "content": PLAN}, 403),  # thresholds: GP only
    ("gp.torvet", {"base_version": 0, "content": PLAN}, 409),
    ("gp.torvet", {"base_version": "1", "content": PLAN}, 400),
    ("gp.torvet", {"base_version": 1, "content": {**PLAN, "goals": "walk"}}, 400),
    ("gp.torvet", ["not", "an", "object"], 400),
    ("patient.karen", {"base_version": 1, "content": PLAN}, 404),  # not Karen's own record
])
def test_changes_that_cannot_be_made_are_answered_clearly(app, poul, username: str,  # noqa: F811
                                                          body: Any, status: int) -> None:
    response = app.test_client().put(f"/api/patients/{poul}/care-plan",
                                     headers=bearer(app, username), json=body)
    assert response.status_code == status
    answer = response.get_json()
    assert answer["error"]
    if status == 409:
        assert answer["current"]["version"] == 1
    if status == 400 and isinstance(body, dict) and body["base_version"] == 1:
        assert answer["errors"] == ["goals: Input should be a valid list"]


def test_a_patient_reads_their_own_plan_and_proposals_but_changes_nothing(app) -> None:  # noqa: F811
    karen = patient_id(app.config["fixture"], "0101419996")
    client, headers = app.test_client(), bearer(app, "patient.karen")
    plan = client.get(f"/api/patients/{karen}/care-plan", headers=headers).get_json()
    assert plan["version"] == 1 and not any(plan["permissions"].values())
    assert client.get(f"/api/patients/{karen}/threshold-proposals",
                      headers=headers).status_code == 200
    made = client.post(f"/api/patients/{karen}/threshold-proposals", headers=headers, json={
        "measurement": "pulse", "proposed": PULSE, "reason": "Mig selv"})
    assert made.status_code == 403
    page = app.test_client()
    log_in(page, "patient.karen")
    html = page.get(f"/patients/{karen}/plan").get_data(as_text=True)
    assert 'id="plan-thresholds"' in html and "<form method=\"post\" action=\"/patients" not in html


def test_a_proposal_travels_from_nurse_to_gp_over_the_api(app, engine, poul) -> None:  # noqa: F811
    client = app.test_client()
    nurse, gp = bearer(app, "nurse.aalby"), bearer(app, "gp.torvet")
    made = client.post(f"/api/patients/{poul}/threshold-proposals", headers=nurse, json={
        "measurement": "pulse", "proposed": PULSE, "reason": "Høj puls", "base_version": 1})
    assert made.status_code == 201, made.get_json()
    proposal = made.get_json()
    assert proposal["status"] == "pending" and proposal["may_withdraw"] is True
    waiting = client.get("/api/threshold-proposals?status=pending&decidable=1",
                         headers=gp).get_json()
    assert proposal["id"] in [p["id"] for p in waiting]
    assert {p["patient"]["display"] for p in waiting} == {"Poul Test Nielsen"}
    assert client.get("/api/threshold-proposals?status=pending&decidable=1",
                      headers=nurse).get_json() == []
    refused = client.post(f"/api/threshold-proposals/{proposal['id']}/approve", headers=nurse)
    assert refused.status_code == 403
    approved = client.post(f"/api/threshold-proposals/{proposal['id']}/approve", headers=gp,
                           json={"note": "Ok"})
    assert approved.status_code == 200 and approved.get_json()["result_version"] == 2
    again = client.post(f"/api/threshold-proposals/{proposal['id']}/reject", headers=gp,
                        json={"note": "x"})
    assert again.status_code == 409
    seen = client.get(f"/api/patients/{poul}/threshold-proposals", headers=nurse).get_json()
    assert (seen[0]["id"], seen[0]["status"]) == (proposal["id"], "approved")
    plan = client.get(f"/api/patients/{poul}/care-plan", headers=nurse).get_json()
    assert plan["version"] == 2 and plan["content"]["thresholds"]["pulse"]["red_high"] == 130
    assert any(r == f"ThresholdProposal/{proposal['id']}" for r in audit_resources(engine, poul))


@pytest.mark.parametrize(("query", "status"), [("status=maybe", 400), ("status=approved", 200),
                                               ("", 200)])
def test_the_proposal_list_checks_its_filter(app, query: str, status: int) -> None:  # noqa: F811
    response = app.test_client().get(f"/api/threshold-proposals?{query}",
                                     headers=bearer(app, "gp.torvet"))
    assert response.status_code == status


def test_an_unknown_or_hidden_proposal_is_404(app) -> None:  # noqa: F811
    client = app.test_client()
    assert client.post("/api/threshold-proposals/999/approve",
                       headers=bearer(app, "gp.torvet")).status_code == 404
    [seeded] = client.get("/api/threshold-proposals", headers=bearer(app, "gp.torvet")).get_json()
    assert client.post(f"/api/threshold-proposals/{seeded['id']}/withdraw",
                       headers=bearer(app, "gp.skovvej")).status_code == 404


# ---- /fhir ----

def test_fhir_care_plan_search_read_and_vread(app, engine, poul) -> None:  # noqa: F811
    client, headers = app.test_client(), bearer(app, "nurse.aalby")
    bundle = client.get(f"/fhir/CarePlan?patient={poul}", headers=headers).get_json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    plan = bundle["entry"][0]["resource"]
    assert plan["resourceType"] == "CarePlan" and plan["subject"]["reference"] == f"Patient/{poul}"
    assert plan["meta"]["versionId"] == "1" and plan["status"] == "active"
    spo2, *_later = [a for a in plan["activity"]
                     if a["detail"]["code"]["coding"][0]["code"] == "2708-6"]
    assert spo2["detail"]["scheduledTiming"]["repeat"]["timeOfDay"] == ["09:00:00", "17:00:00"]
    assert "red below 88, yellow below 92" in spo2["detail"]["description"]
    read = client.get(f"/fhir/CarePlan/{plan['id']}", headers=headers)
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    assert client.get(f"/fhir/CarePlan/{plan['id']}/_history/1",
                      headers=headers).status_code == 200
    assert client.get(f"/fhir/CarePlan/{plan['id']}/_history/2",
                      headers=headers).status_code == 404
    assert f"CarePlan/{plan['id']}" in audit_resources(engine, poul)


@pytest.mark.parametrize(("path", "status"), [("CarePlan/{episode}", 404),
                                              ("CarePlan?patient={poul}", 200),
                                              ("CarePlan", 400)])
def test_fhir_hides_plans_from_outside_the_team(app, poul, path: str,  # noqa: F811
                                               status: int) -> None:
    client = app.test_client()
    plan = client.get(f"/fhir/CarePlan?patient={poul}",
                      headers=bearer(app, "gp.torvet")).get_json()["entry"][0]["resource"]
    response = client.get("/fhir/" + path.format(episode=plan["id"], poul=poul),
                          headers=bearer(app, "nurse.boestrup"))
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["total"] == 0


def test_the_capability_statement_lists_care_plan(app) -> None:  # noqa: F811
    statement = app.test_client().get("/fhir/metadata").get_json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "CarePlan"]
    assert {i["code"] for i in entry["interaction"]} == {"read", "vread", "search-type"}


# ---- pages ----

def page_token(html: str) -> str:
    return csrf_token(html)


def test_the_plan_page_shows_the_plan_to_the_team_and_hides_it_from_others(app, poul) -> None:  # noqa: F811
    nurse = app.test_client()
    log_in(nurse, "nurse.aalby")
    html = nurse.get(f"/patients/{poul}/plan").get_data(as_text=True)
    assert 'id="plan-thresholds"' in html and 'id="propose-form"' in html
    assert 'name="t-spo2-red_low"' not in html  # thresholds are the GP's to edit
    assert 'name="notes"' in html
    outsider = app.test_client()
    log_in(outsider, "nurse.boestrup")
    assert outsider.get(f"/patients/{poul}/plan").status_code == 404


def test_a_proposal_goes_from_the_nurses_page_to_the_gps_proposals_page(app, poul) -> None:  # noqa: F811
    nurse = app.test_client()
    log_in(nurse, "nurse.aalby")
    token = page_token(nurse.get(f"/patients/{poul}/plan").get_data(as_text=True))
    sent = nurse.post(f"/patients/{poul}/plan/proposals", data={
        "csrf_token": token, "measurement": "pulse", "red_low": "40", "yellow_low": "50",
        "yellow_high": "110", "red_high": "130", "reason": "Høj puls", "base_version": "1"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/plan#proposals")
    gp = app.test_client()
    log_in(gp, "gp.torvet")
    page = gp.get("/proposals").get_data(as_text=True)
    ids = re.findall(r'data-proposal="(\d+)" data-status="pending"', page)
    assert len(ids) == 2  # the seeded one and the new one
    newest = max(ids, key=int)
    done = gp.post(f"/proposals/{newest}/approve", data={
        "csrf_token": page_token(page), "note": "", "next": "/proposals"})
    assert done.status_code == 302 and done.headers["Location"] == "/proposals"
    plan = nurse.get(f"/patients/{poul}/plan").get_data(as_text=True)
    assert 'data-version="2"' in plan
    assert f'data-proposal="{newest}" data-status="approved"' in plan


def test_a_bad_proposal_form_is_shown_again_with_the_errors(app, poul) -> None:  # noqa: F811
    nurse = app.test_client()
    log_in(nurse, "nurse.aalby")
    token = page_token(nurse.get(f"/patients/{poul}/plan").get_data(as_text=True))
    response = nurse.post(f"/patients/{poul}/plan/proposals", data={
        "csrf_token": token, "measurement": "pulse", "red_low": "60", "yellow_low": "50",
        "reason": "Mit forslag", "base_version": "1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'id="propose-errors"' in html
    assert "red_low 60 must be below yellow_low 50" in html and "Mit forslag" in html


def test_the_gp_edits_thresholds_and_schedules_in_the_form(app, poul) -> None:  # noqa: F811
    gp = app.test_client()
    log_in(gp, "gp.torvet")
    html = gp.get(f"/patients/{poul}/plan").get_data(as_text=True)
    form = {"csrf_token": page_token(html), "base_version": "1", "s-rows": "3",
            "t-spo2-red_low": "88", "t-spo2-yellow_low": "92", "t-weight-red_high": "150",
            "s-0-code": "measurement:spo2", "s-0-times": "09:00 17:00", "s-0-to": "13",
            "s-1-code": "measurement:spo2", "s-1-times": "12:00", "s-1-from": "14",
            "s-2-code": "questionnaire:cat", "s-2-times": "10:00", "s-2-wd-0": "on",
            "sc-green": "Godt", "goals": "Gå\nCykle", "notes": "N"}
    response = gp.post(f"/patients/{poul}/plan", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    data = gp.get(f"/api/patients/{poul}/care-plan").get_json()
    assert data["version"] == 2 and data["content"]["goals"] == ["Gå", "Cykle"]
    assert data["content"]["thresholds"]["weight"]["red_high"] == 150
    assert [(s["code"], s["times"], s["weekdays"], s["from_day"], s["to_day"])
            for s in data["content"]["schedules"]] == [
        ("spo2", ["09:00", "17:00"], [], 0, 13), ("spo2", ["12:00"], [], 14, None),
        ("cat", ["10:00"], [0], 0, None)]
    page = gp.get(f"/patients/{poul}/plan").get_data(as_text=True)
    assert "the first 14 days" in page or "de første 14 dage" in page


def test_the_proposals_page_is_not_for_patients_or_administrators(app) -> None:  # noqa: F811
    for username in ("patient.karen", "admin"):
        client = app.test_client()
        log_in(client, username)
        assert client.get("/proposals").status_code == 404
