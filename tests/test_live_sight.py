"""within_sight: an event about a patient reaches only the organisations that see them now."""

from __future__ import annotations

from sqlmodel import Session, select
from telekol.server import events
from telekol.server.care import episodes
from telekol.server.demo.seed import HOSPITAL_PATTERN
from telekol.server.models import User
from telekol.server.web.live_sight import within_sight


def test_an_organisation_that_lost_sight_is_cut_from_the_rooms(engine, demo) -> None:
    kinds = {o["id"]: o["kind"] for o in demo["organizations"]}
    patient = next(p for p in demo["patients"] if p["cpr"] not in HOSPITAL_PATTERN
                   and {"gp", "municipality"} <= {kinds[o] for o in p["care_team"]})
    team = {kinds[o]: o for o in patient["care_team"]}
    event = {"type": "observation", "rooms": events.rooms_for(patient["id"], patient["care_team"]),
             "data": {"id": "x", "patient": {"id": patient["id"], "display": "P"}}}
    assert within_sight(engine, [event])[0]["rooms"] == event["rooms"]
    with Session(engine) as session:
        keeper = session.exec(select(User).where(
            User.organization_id == team["municipality"], User.role == "nurse")).first()
        episodes.consent_by(session, keeper, patient["id"], "sharing", False, method="verbal")
        session.commit()
    rooms = within_sight(engine, [event])[0]["rooms"]
    assert f"org:{team['gp']}" not in rooms
    assert f"org:{team['municipality']}" in rooms and f"patient:{patient['id']}" in rooms
