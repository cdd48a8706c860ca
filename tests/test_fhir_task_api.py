"""Alerts as FHIR Task at /fhir/Task, on both database backends."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, col, select
from telekol.fhir.task import ALERT_RULE_SYSTEM
from telekol.fhir.validation import validate_resource
from telekol.server.ingest.batch import IngestService
from telekol.server.models import Alert, User
from telekol.server.web import create_app

from tests.test_fhir_api import Fhir
from tests.test_ingest import NOW, delivery, reading


@pytest.fixture
def app(engine, demo, settings):
    """Return an app where patient 0 has a red SpO2 alert (seen twice) and patient 2 a yellow."""
    first, third = demo["devices"][0]["device_id"], demo["devices"][2]["device_id"]
    service = IngestService(engine, clock=lambda: NOW)
    service.ingest([delivery(first, reading("m1", 80, minutes_ago=5))])
    service.ingest([delivery(first, reading("m2", 82, minutes_ago=2))])
    service.ingest([delivery(third, reading("m3", 90))])
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(settings.with_overrides(database_url=url), live=False)
    app.config.update(fixture=demo, engine=engine)
    return app


def alerts(app, patient: str | None = None) -> list[Alert]:
    """Return the stored alerts (of one patient), oldest first."""
    with Session(app.config["engine"]) as session:
        query = select(Alert).order_by(col(Alert.id))
        if patient:
            query = query.where(Alert.patient_id == patient)
        return list(session.exec(query).all())


def change(app, alert_id: int, **values: object) -> None:
    """Set columns of a stored alert directly (standing in for the lifecycle and escalation)."""
    with Session(app.config["engine"]) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        for name, value in values.items():
            setattr(alert, name, value)
        alert.updated_at = alert.updated_at + timedelta(minutes=1)
        session.add(alert)
        session.commit()


def matches(bundle: dict) -> list[dict]:
    """Return the validated Task matches of a searchset Bundle."""
    validate_resource(bundle)
    return [validate_resource(e["resource"]) for e in bundle.get("entry", [])
            if e["search"]["mode"] == "match"]


def test_a_red_alert_reads_as_an_asap_task_owned_by_the_monitoring_organisation(app) -> None:
    fhir = Fhir(app)
    alert = alerts(app, fhir.patient)[0]
    response = fhir.get(f"Task/alert-{alert.id}")
    task = validate_resource(response.get_json())
    assert response.status_code == 200
    assert response.headers["ETag"] == f'W/"{task["meta"]["versionId"]}"'
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["priority"] == "asap"
    assert task["code"]["coding"] == [{"system": ALERT_RULE_SYSTEM, "code": alert.rule}]
    assert task["description"] == alert.reason
    assert task["for"] == {"reference": f"Patient/{fhir.patient}"}
    assert task["focus"] == {"reference": f"Observation/{alert.last_observation_id}"}
    assert alert.last_observation_id != alert.observation_id  # the repeat is the focus
    assert task["owner"] == {"reference": "Organization/muni-aalby"}
    assert "2 occurrences" in task["businessStatus"]["text"]
    assert task["authoredOn"].startswith(alert.created_at.date().isoformat())


@pytest.mark.parametrize(("status", "task_status"), [
    ("open", "requested"), ("acknowledged", "in-progress"), ("snoozed", "on-hold"),
    ("resolved", "completed")])
@pytest.mark.parametrize(("severity", "priority"), [
    ("red", "asap"), ("yellow", "urgent"), ("blue", "routine")])
def test_every_status_and_severity_maps_and_validates(app, status, task_status, severity,
                                                     priority) -> None:
    fhir = Fhir(app)
    alert = alerts(app, fhir.patient)[0]
    before = fhir.get(f"Task/alert-{alert.id}").get_json()["meta"]["versionId"]
    change(app, alert.id, status=status, severity=severity)
    task = validate_resource(fhir.get(f"Task/alert-{alert.id}").get_json())
    assert (task["status"], task["priority"]) == (task_status, priority)
    assert task["meta"]["versionId"] != before
    found = matches(fhir.get(f"Task?patient={fhir.patient}&status={task_status}"
                             f"&priority={priority}").get_json())
    assert [t["id"] for t in found] == [f"alert-{alert.id}"]


def test_the_acknowledgement_note_and_who_wrote_it_are_a_task_note(app) -> None:
    fhir = Fhir(app)
    alert = alerts(app, fhir.patient)[0]
    with Session(app.config["engine"]) as session:
        nurse = session.exec(select(User).where(User.username == "nurse.aalby")).one()
    change(app, alert.id, status="acknowledged", acknowledged_by=nurse.id,
           acknowledged_at=NOW, note="Called Karen, she is resting")
    task = fhir.get(f"Task/alert-{alert.id}").get_json()
    assert task["note"] == [{"text": "Called Karen, she is resting",
                             "authorReference": {"reference": f"Practitioner/{nurse.id}"},
                             "time": "2026-11-25T08:00:00.000Z"}]


def test_after_escalation_the_task_is_owned_by_the_hospital(app) -> None:
    fhir = Fhir(app)
    alert = alerts(app, fhir.patient)[0]
    change(app, alert.id, escalated_to="hosp-lung", escalation_level=1)
    task = fhir.get(f"Task/alert-{alert.id}").get_json()
    assert task["owner"] == {"reference": "Organization/hosp-lung"}
    assert "escalation level 1" in task["businessStatus"]["text"]
    hospital = Fhir(app, "doctor.hospital")
    assert [t["id"] for t in matches(hospital.get("Task?owner=Organization/hosp-lung")
                                     .get_json())] == [f"alert-{alert.id}"]
    assert matches(fhir.get(f"Task?owner=muni-aalby&patient={fhir.patient}").get_json()) == []


def test_owner_search_finds_the_monitoring_organisations_work(app) -> None:
    aalby = matches(Fhir(app).get("Task?owner=Organization/muni-aalby").get_json())
    boestrup = matches(Fhir(app, "nurse.boestrup").get(
        "Task?owner=Organization/muni-boestrup").get_json())
    assert len(aalby) == len(boestrup) == 1
    assert aalby[0]["priority"] == "asap" and boestrup[0]["priority"] == "urgent"


@pytest.mark.parametrize("username", ["nurse.boestrup", "gp.skovvej", "admin", "patient.karen"])
def test_outside_the_care_team_a_task_is_absent(app, username: str) -> None:
    alert = alerts(app, app.config["fixture"]["patients"][0]["id"])[0]
    outsider = Fhir(app, username)
    seen, absent = outsider.get(f"Task/alert-{alert.id}"), outsider.get("Task/alert-999999")
    assert seen.status_code == absent.status_code == 404
    assert seen.get_json()["issue"][0]["code"] == "not-found"
    found = matches(outsider.get(f"Task?patient={outsider.patient}").get_json())
    assert found == []


def test_the_care_team_sees_the_task_read_only_too_and_bad_ids_are_absent(app) -> None:
    alert = alerts(app, app.config["fixture"]["patients"][0]["id"])[0]
    assert Fhir(app, "gp.torvet").get(f"Task/alert-{alert.id}").status_code == 200
    fhir = Fhir(app)
    for ident in ("nope", f"{alert.id}", "alert-x", "alert-"):
        assert fhir.get(f"Task/{ident}").status_code == 404


def test_search_pages_by_keyset_in_each_sort_order(app) -> None:
    fhir = Fhir(app)
    patient = fhir.patient
    extra = IngestService(app.config["engine"], clock=lambda: NOW + timedelta(hours=1))
    for index, minutes in enumerate((30, 20, 10)):
        for alert in alerts(app, patient):
            change(app, alert.id, status="resolved")  # one unresolved alert per rule
        extra.ingest([delivery(app.config["fixture"]["devices"][0]["device_id"],
                               reading(f"p{index}", 80, minutes_ago=minutes))])
    everyone = [f"alert-{a.id}" for a in alerts(app, patient)]
    assert len(everyone) >= 4
    for sort, expected in [("-authored-on", everyone[::-1]), ("_id", everyone),
                           ("-_lastUpdated", None)]:
        seen, url = [], f"Task?subject=Patient/{patient}&_sort={sort}&_count=2"
        while url:
            bundle = fhir.get(url).get_json()
            assert bundle["total"] == len(everyone)
            seen += [t["id"] for t in matches(bundle)]
            link = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
            url = link and "Task?" + urlsplit(link).query
        assert sorted(seen) == sorted(everyone) and len(seen) == len(set(seen))
        if expected:
            assert seen == expected
    assert fhir.get("Task?_sort=priority").status_code == 400
    assert fhir.get("Task?focus=Observation/1").status_code == 400
    assert fhir.get("Task?_summary=count").get_json()["total"] == len(everyone)


def test_everything_holds_the_patients_tasks_for_the_care_team_only(app) -> None:
    fhir = Fhir(app)
    bundle = validate_resource(fhir.get(f"Patient/{fhir.patient}/$everything").get_json())
    tasks = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert [t["id"] for t in tasks] == [f"alert-{a.id}" for a in alerts(app, fhir.patient)]
    own = Fhir(app, "patient.karen").get(f"Patient/{fhir.patient}/$everything").get_json()
    assert all(e["resource"]["resourceType"] != "Task" for e in own["entry"])
