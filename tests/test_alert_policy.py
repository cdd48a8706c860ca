"""Only nurses, doctors and GPs act on alerts: a secretary reads them and gets 403, and her
pages show no buttons she may not use (server/care/access.py, "act_on_alerts")."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from telekol.server.accounts.admin import add_user
from telekol.server.demo.seed import DEMO_PASSWORD

from tests.test_alert_workflow import app, headers, send, the_alert  # noqa: F401
from tests.test_web import log_in


@pytest.fixture
def secretary(engine) -> str:
    with Session(engine) as session:
        add_user(session, "secretary.aalby", "Sekretær Anne Vang", "secretary", "muni-aalby",
                 password=DEMO_PASSWORD)
        session.commit()
    return "secretary.aalby"


@pytest.mark.parametrize(("action", "body"), [
    ("acknowledge", {}), ("snooze", {"minutes": 10, "reason": "x"}), ("resolve", {})])
def test_a_secretary_of_the_responsible_organisation_gets_403_on_a_red_alert(
        app, engine, demo, secretary, action: str, body: dict) -> None:  # noqa: F811
    send(engine, demo, "r1", 84)
    alert = the_alert(engine)
    assert alert.severity == "red"
    client = app.test_client()
    answer = client.post(f"/api/alerts/{alert.id}/{action}", json=body,
                         headers=headers(client, secretary))
    assert answer.status_code == 403, answer.get_json()
    assert "nurses, doctors and GPs" in answer.get_json()["error"]
    assert the_alert(engine).status == "open"
    # She still reads it.
    listed = client.get("/api/alerts", headers=headers(client, secretary)).get_json()
    assert alert.id in [a["id"] for a in listed]


def test_a_secretary_cannot_acknowledge_all_of_a_patients_alerts(
        app, engine, demo, secretary) -> None:  # noqa: F811
    send(engine, demo, "r1", 84)
    patient = the_alert(engine).patient_id
    client = app.test_client()
    answer = client.post(f"/api/patients/{patient}/alerts/acknowledge", json={},
                         headers=headers(client, secretary))
    assert answer.status_code == 403
    assert the_alert(engine).status == "open"


@pytest.mark.parametrize(("username", "forms"), [("nurse.aalby", True),
                                                 ("secretary.aalby", False)])
def test_the_work_list_shows_alert_buttons_only_to_those_who_may_act(
        app, engine, demo, secretary, username: str, forms: bool) -> None:  # noqa: F811
    send(engine, demo, "r1", 84)
    alert = the_alert(engine)
    alert_id = alert.id
    client = app.test_client()
    log_in(client, username)
    # The row whole, with its forms, as the script fetches it when the row is opened.
    page = client.get(f"/worklist/rows?ids={alert.patient_id}").get_data(as_text=True)
    assert f'data-alert="{alert_id}"' in page  # both see the alert
    assert (f"/alerts/{alert_id}/acknowledge" in page) is forms
    assert (f"/alerts/{alert_id}/snooze" in page) is forms
    assert (f"/alerts/{alert_id}/resolve" in page) is forms
