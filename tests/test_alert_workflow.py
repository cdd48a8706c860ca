"""Alert workflow: routing to the responsible organisation, snooze, patient message,
automatic resolve, the transition log and the GP's inbox (both backends, fixed clocks)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select
from telekol.server.alerts.escalation import apply_escalations
from telekol.server.alerts.lifecycle import (
    NotResponsible,
    acknowledge,
    resolve,
    snooze,
)
from telekol.server.alerts.scheduler import Scheduler, ensure_defaults
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.ingest.batch import IngestService
from telekol.server.models import Alert, AlertTransition, InboxItem, User
from telekol.server.web import create_app

from tests.test_ingest import NOW, delivery, reading

RULE = "threshold:spo2"


@pytest.fixture
def app(engine, demo, settings):
    """Return an app on the seeded database, without the live MQTT bridge."""
    url = engine.url.render_as_string(hide_password=False)
    return create_app(settings.with_overrides(database_url=url), live=False)


def send(engine, demo, msg_id: str, spo2: float, at=NOW, patient: int = 0) -> None:
    """Deliver one SpO2 reading for a demo patient (0 = Karen: Aalby, Torvet, hospital)."""
    device = demo["devices"][patient]["device_id"]
    IngestService(engine, clock=lambda: at).ingest([delivery(device, reading(msg_id, spo2))])


def the_alert(engine, patient_id: str | None = None) -> Alert:
    with Session(engine) as session:
        query = select(Alert).where(Alert.rule == RULE)
        if patient_id:
            query = query.where(Alert.patient_id == patient_id)
        return session.exec(query.order_by(col(Alert.id).desc())).first()  # type: ignore[return-value]


def user(session: Session, username: str) -> User:
    return session.exec(select(User).where(User.username == username)).one()


def headers(client, username: str) -> dict[str, str]:
    token = client.post("/api/auth/token", json={"username": username,
                                                  "password": DEMO_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def actions(engine, alert_id: int) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(AlertTransition).where(AlertTransition.alert_id == alert_id)
                            .order_by(col(AlertTransition.id))).all()
        return [(r.action, r.actor) for r in rows]


def run_scheduler(engine, at) -> list[dict]:
    return Scheduler(engine, lambda batch: None, clock=lambda: at).run_once()


def test_only_the_monitoring_organisation_acts_the_gp_reads_outsiders_see_nothing(
        app, engine, demo) -> None:
    send(engine, demo, "r1", 84)
    alert_id = the_alert(engine).id
    client = app.test_client()
    nurse, gp = headers(client, "nurse.aalby"), headers(client, "gp.torvet")
    [listed] = [a for a in client.get("/api/alerts", headers=gp).get_json() if a["id"] == alert_id]
    assert listed["responsible"] == {"id": "muni-aalby", "name": "Hjemmesygeplejen, Aalby Kommune"}
    url = f"/api/alerts/{alert_id}"
    for action, body in (("acknowledge", {}), ("resolve", {}),
                         ("snooze", {"minutes": 10, "reason": "x"})):
        refused = client.post(f"{url}/{action}", json=body, headers=gp)
        assert refused.status_code == 403 and "error" in refused.get_json()
        outsider = client.post(f"{url}/{action}", json=body,
                               headers=headers(client, "nurse.boestrup"))
        assert outsider.status_code == 404
    done = client.post(f"{url}/acknowledge", json={"note": "ringer"}, headers=nurse)
    assert done.status_code == 200 and done.get_json()["status"] == "acknowledged"


def test_after_escalation_the_hospital_acts_and_the_nurse_is_read_only(engine, demo) -> None:
    ensure_defaults(engine)
    send(engine, demo, "r1", 84)
    alert_id = the_alert(engine).id
    [event] = [e for e in apply_escalations(engine, NOW + timedelta(minutes=61))
               if e["data"]["id"] == alert_id]
    assert event["data"]["responsible"]["id"] == "hosp-lung"
    with Session(engine) as session:
        with pytest.raises(NotResponsible):
            acknowledge(session, user(session, "nurse.aalby"), alert_id)
        alert = acknowledge(session, user(session, "doctor.hospital"), alert_id,
                            clock=lambda: NOW + timedelta(minutes=70))
        assert alert.status == "acknowledged"
        session.commit()
    assert actions(engine, alert_id) == [("created", "gateway"), ("escalated", "scheduler"),
                                         ("acknowledged", "user")]


def test_snooze_keeps_repeats_quiet_and_the_scheduler_reopens_it(app, engine, demo) -> None:
    send(engine, demo, "r1", 84)
    alert_id = the_alert(engine).id
    client = app.test_client()
    nurse = headers(client, "nurse.aalby")
    for bad in ({"minutes": 0, "reason": "x"}, {"minutes": 1441, "reason": "x"},
                {"minutes": "5", "reason": "x"}, {"minutes": 5, "reason": "  "},
                {"minutes": 5, "reason": "x" * 501}, {"minutes": 5}):
        assert client.post(f"/api/alerts/{alert_id}/snooze", json=bad,
                           headers=nurse).status_code == 400
    with Session(engine) as session:
        snooze(session, user(session, "nurse.aalby"), alert_id, 30, " venter på svar ",
               clock=lambda: NOW)
        session.commit()
    send(engine, demo, "r2", 83, at=NOW + timedelta(minutes=5))
    alert = the_alert(engine)
    assert (alert.status, alert.count, alert.snooze_reason) == ("snoozed", 2, "venter på svar")
    assert alert.snoozed_until == NOW + timedelta(minutes=30)
    listed = client.get("/api/alerts", headers=nurse).get_json()
    [payload] = [a for a in listed if a["id"] == alert_id]
    assert payload["snoozed_until"] == "2026-11-25T08:30:00.000Z"
    assert payload["snooze_reason"] == "venter på svar"
    assert not [e for e in run_scheduler(engine, NOW + timedelta(minutes=29))
                if e["data"]["id"] == alert_id]
    [event] = [e for e in run_scheduler(engine, NOW + timedelta(minutes=30))
               if e["data"]["id"] == alert_id]
    assert (event["data"]["status"], event["data"]["snoozed_until"]) == ("open", None)
    assert the_alert(engine).status == "open"
    assert actions(engine, alert_id) == [("created", "gateway"), ("snoozed", "user"),
                                         ("updated", "gateway"), ("unsnoozed", "scheduler")]


def test_acknowledge_and_resolve_work_from_snoozed(engine, demo) -> None:
    send(engine, demo, "r1", 84)
    send(engine, demo, "r2", 90, patient=1)
    first, second = the_alert(engine, demo["patients"][0]["id"]).id, the_alert(
        engine, demo["patients"][1]["id"]).id
    with Session(engine) as session:
        nurse = user(session, "nurse.aalby")
        for alert_id in (first, second):
            snooze(session, nurse, alert_id, 60, "weekend", clock=lambda: NOW)
        assert acknowledge(session, nurse, first, clock=lambda: NOW).status == "acknowledged"
        done = resolve(session, nurse, second, clock=lambda: NOW)
        assert (done.status, done.resolution, done.snoozed_until) == ("resolved", "manual", None)
        session.commit()
    assert actions(engine, second)[-1] == ("resolved", "user")


def test_the_patient_sees_the_message_left_on_acknowledgement(app, engine, demo) -> None:
    send(engine, demo, "r1", 84)
    alert_id = the_alert(engine).id
    client = app.test_client()
    nurse = headers(client, "nurse.aalby")
    too_long = client.post(f"/api/alerts/{alert_id}/acknowledge",
                           json={"patient_message": "x" * 1001}, headers=nurse)
    assert too_long.status_code == 400
    done = client.post(f"/api/alerts/{alert_id}/acknowledge", headers=nurse, json={
        "note": "ringet op", "patient_message": "Vi ringer til dig i dag."})
    assert done.get_json()["patient_message"] == "Vi ringer til dig i dag."
    mine = client.get("/api/alerts", headers=headers(client, "patient.karen")).get_json()
    [seen] = [a for a in mine if a["id"] == alert_id]
    assert seen["patient_message"] == "Vi ringer til dig i dag."
    assert {a["patient"]["id"] for a in mine} == {demo["patients"][0]["id"]}


def test_automatic_resolve_after_the_rule_stayed_quiet_long_enough(engine, demo) -> None:
    send(engine, demo, "r1", 84)
    alert_id = the_alert(engine).id
    send(engine, demo, "r2", 85, at=NOW + timedelta(hours=10))  # fired again: clock restarts
    assert the_alert(engine).status == "open"
    run_scheduler(engine, NOW + timedelta(hours=33, minutes=59))
    assert the_alert(engine).status != "resolved"
    [event] = [e for e in run_scheduler(engine, NOW + timedelta(hours=34))
               if e["data"]["id"] == alert_id]
    alert = the_alert(engine)
    assert (alert.status, alert.resolution, alert.resolved_by) == ("resolved", "automatic", None)
    assert (event["data"]["status"], event["data"]["resolution"]) == ("resolved", "automatic")
    assert actions(engine, alert_id)[-1] == ("auto-resolved", "scheduler")
    # The next red reading opens a new alert (one unresolved alert per patient and rule).
    send(engine, demo, "r3", 84, at=NOW + timedelta(hours=35))
    assert the_alert(engine).id != alert_id and the_alert(engine).status == "open"


def test_every_transition_is_in_the_history_for_the_care_team_only(app, engine, demo) -> None:
    send(engine, demo, "r1", 84)
    send(engine, demo, "r2", 83, at=NOW + timedelta(minutes=1))
    alert_id = the_alert(engine).id
    client = app.test_client()
    nurse = headers(client, "nurse.aalby")
    url = f"/api/alerts/{alert_id}"
    client.post(f"{url}/snooze", json={"minutes": 15, "reason": "i bad"}, headers=nurse)
    client.post(f"{url}/acknowledge", json={"note": "set"}, headers=nurse)
    client.post(f"{url}/resolve", json={"note": "ok"}, headers=nurse)
    history = client.get(f"{url}/history", headers=headers(client, "gp.torvet")).get_json()
    assert [(h["action"], h["actor"]) for h in history] == [
        ("created", "gateway"), ("updated", "gateway"), ("snoozed", "user"),
        ("acknowledged", "user"), ("resolved", "user")]
    assert history[2]["actor_name"] == "Sygeplejerske Mette Holm"
    assert history[2]["note"] == "15 min: i bad"
    assert client.get(f"{url}/history",
                      headers=headers(client, "nurse.boestrup")).status_code == 404


def test_red_goes_to_the_gps_inbox_once_and_can_be_marked_read(app, engine, demo) -> None:
    send(engine, demo, "r1", 90)  # yellow: no inbox item
    with Session(engine) as session:
        assert session.exec(select(InboxItem)).all() == []
    send(engine, demo, "r2", 84, at=NOW + timedelta(minutes=1))  # updated to red
    send(engine, demo, "r3", 83, at=NOW + timedelta(minutes=2))  # still red: no second item
    alert_id = the_alert(engine).id
    with Session(engine) as session:
        items = session.exec(select(InboxItem)).all()
        assert [(i.organization_id, i.alert_id) for i in items] == [("gp-torvet", alert_id)]
    client = app.test_client()
    gp, nurse = headers(client, "gp.torvet"), headers(client, "nurse.aalby")
    [item] = client.get("/api/inbox", headers=gp).get_json()
    assert (item["read"], item["alert"]["id"], item["alert"]["severity"]) == (
        False, alert_id, "red")
    assert client.get("/api/inbox/unread-count", headers=gp).get_json() == {"unread": 1}
    for other in ("nurse.aalby", "gp.skovvej", "doctor.hospital", "patient.karen"):
        assert client.get("/api/inbox", headers=headers(client, other)).get_json() == []
    assert client.post(f"/api/inbox/{item['id']}/read", headers=nurse).status_code == 404
    read = client.post(f"/api/inbox/{item['id']}/read", headers=gp)
    assert read.status_code == 200 and read.get_json()["read"] is True
    assert client.get("/api/inbox/unread-count", headers=gp).get_json() == {"unread": 0}


def test_a_red_alert_created_red_reaches_the_inbox_of_the_gp_only(engine, demo) -> None:
    send(engine, demo, "r1", 84, patient=2)  # Inge: Bøstrup, Skovvej
    alert_id = the_alert(engine, demo["patients"][2]["id"]).id
    with Session(engine) as session:
        items = session.exec(select(InboxItem)).all()
        assert [(i.organization_id, i.alert_id) for i in items] == [("gp-skovvej", alert_id)]
