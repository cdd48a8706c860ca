"""Threshold proposals: proposed by a care-team clinician, decided by the treatment-responsible
doctor or GP, withdrawn by the proposer; approval makes a new care plan version."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select
from telekol.server.care import plan as care_plan
from telekol.server.care import proposals
from telekol.server.care.plan import CarePlanError, NotAllowed, StaleVersion
from telekol.server.care.plan_content import InvalidCarePlan
from telekol.server.models import Threshold, ThresholdProposal, User

from tests.test_care_plan import patient_id, user

PULSE = {"red_low": 40, "yellow_low": 50, "yellow_high": 110, "red_high": 130}


def propose(session: Session, username: str = "nurse.aalby", pid: str = "",
            limits: dict[str, Any] | None = None, **kwargs: Any) -> ThresholdProposal:
    return proposals.propose(session, user(session, username), pid, kwargs.pop(
        "measurement", "pulse"), limits or PULSE, kwargs.pop("reason", "Høj puls i hvile"),
        **kwargs)


def test_the_demo_has_nurse_aalbys_pending_spo2_proposal_for_poul(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        [row] = proposals.of_patient(session, pid)
        view = proposals.view(session, user(session, "gp.torvet"), row)
    assert row.status == "pending" and row.measurement == "spo2" and row.base_version == 1
    assert row.proposed["yellow_low"] == 91 and row.proposed["red_low"] == 88
    assert row.proposed_by_org == "muni-aalby" and row.reason
    assert view["may_decide"] is True and view["may_withdraw"] is False
    assert view["changed_since_proposal"] is False


def test_the_gp_approves_and_the_plan_and_the_rules_get_the_new_limits(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = propose(session, pid=pid)
        gp = user(session, "gp.torvet")
        proposals.approve(session, gp, row, "Enig")
        session.commit()
        version = care_plan.current_version(session, pid)
        assert version is not None and version.version == 2
        assert version.summary.startswith(f"approved proposal #{row.id} from Sygeplejerske "
                                          "Mette Holm: pulse red_low 41 → 40")
        assert version.changed_by_name == gp.display_name
        assert version.content["thresholds"]["pulse"]["yellow_high"] == 110
        assert version.content["thresholds"]["spo2"]["yellow_low"] == 92  # untouched
        assert (row.status, row.result_version, row.decided_by_name, row.decision_note) == (
            "approved", 2, gp.display_name, "Enig")
        limits = session.exec(select(Threshold).where(
            Threshold.patient_id == pid, Threshold.measurement == "pulse")).one()
        assert (limits.red_low, limits.red_high, limits.set_by) == (40, 130, gp.display_name)


def test_approval_works_when_the_plan_changed_since_and_shows_both(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = propose(session, pid=pid)
        gp = user(session, "gp.torvet")
        content = care_plan.current_version(session, pid).content  # type: ignore[union-attr]
        content = {**content, "thresholds": {**content["thresholds"],
                                             "pulse": {"yellow_high": 105}}}
        care_plan.save(session, gp, pid, 1, content)
        view = proposals.view(session, gp, row)
        assert view["changed_since_proposal"] is True
        assert view["base_limits"]["yellow_high"] == 100  # the programme's, when proposed
        assert view["current_limits"]["yellow_high"] == 105
        proposals.approve(session, gp, row)
        assert row.result_version == 3
        assert care_plan.current_version(session, pid).content[  # type: ignore[union-attr]
            "thresholds"]["pulse"]["yellow_high"] == 110


def test_a_rejection_needs_a_note_and_changes_no_plan(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = propose(session, pid=pid)
        gp = user(session, "gp.torvet")
        with pytest.raises(CarePlanError, match="a note is required"):
            proposals.reject(session, gp, row, "  ")
        proposals.reject(session, gp, row, "Ikke nu")
        assert (row.status, row.decision_note, row.result_version) == ("rejected", "Ikke nu", None)
        assert care_plan.current_version(session, pid).version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("username", "action"), [
    ("nurse.aalby", "approve"),  # monitoring nurse: proposes, does not decide
    ("nurse.aalby", "reject"),
    ("gp.torvet", "withdraw"),  # only the proposer withdraws
])
def test_only_the_right_person_decides_or_withdraws(engine, demo, username: str,
                                                    action: str) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = propose(session, pid=pid)
        actor = user(session, username)
        with pytest.raises(NotAllowed):
            if action == "withdraw":
                proposals.withdraw(session, actor, row)
            else:
                getattr(proposals, action)(session, actor, row, "note")
        assert row.status == "pending"


def test_the_hospital_specialist_may_propose_but_not_decide_for_karen(engine, demo) -> None:
    karen = patient_id(demo, "0101419996")
    with Session(engine) as session:
        row = propose(session, "doctor.hospital", pid=karen)
        with pytest.raises(NotAllowed):
            proposals.approve(session, user(session, "doctor.hospital"), row)
        proposals.approve(session, user(session, "gp.torvet"), row)
        assert row.status == "approved"


def test_the_proposer_withdraws_and_then_nobody_can_decide(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = propose(session, pid=pid)
        proposals.withdraw(session, user(session, "nurse.aalby"), row)
        assert row.status == "withdrawn"
        with pytest.raises(proposals.WrongState):
            proposals.approve(session, user(session, "gp.torvet"), row)


@pytest.mark.parametrize(("changes", "error"), [
    ({"limits": {"red_low": 60, "yellow_low": 50}}, InvalidCarePlan),
    ({"measurement": "glucose"}, InvalidCarePlan),
    ({"reason": ""}, CarePlanError),
    ({"measurement": "spo2", "limits": {"red_low": 88, "yellow_low": 92}}, CarePlanError),
    ({"base_version": 7}, StaleVersion),
])
def test_a_proposal_must_be_valid_and_new(engine, demo, changes: dict[str, Any],
                                          error: type[Exception]) -> None:
    with Session(engine) as session, pytest.raises(error):
        propose(session, pid=patient_id(demo), **changes)


def test_a_secretary_or_an_outsider_may_not_propose(engine, demo) -> None:
    with Session(engine) as session:
        outsider = user(session, "nurse.boestrup")  # not on Poul's team
        with pytest.raises(NotAllowed):
            proposals.propose(session, outsider, patient_id(demo), "pulse", PULSE, "x")
        secretary = User(username="sec", password_hash="x", display_name="Sekretær",
                         role="secretary", organization_id="muni-aalby")
        with pytest.raises(NotAllowed):
            proposals.propose(session, secretary, patient_id(demo), "pulse", PULSE, "x")


def test_decidable_lists_only_pending_proposals_the_user_may_decide(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        mine = propose(session, pid=pid)
        inge = patient_id(demo, "2207389998")  # gp-skovvej treats her
        propose(session, "nurse.boestrup", pid=inge)
        gp = user(session, "gp.torvet")
        decidable = proposals.visible_to(session, gp, "pending", decidable=True)
        assert {r.patient_id for r in decidable} == {pid}
        assert mine in decidable
        assert proposals.visible_to(session, user(session, "nurse.aalby"), "pending",
                                    decidable=True) == []
        assert len(proposals.visible_to(session, user(session, "gp.skovvej"), "pending",
                                        decidable=True)) == 1


def test_a_proposal_event_reaches_the_team_rooms_but_not_the_patient(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        event = proposals.proposal_event(session, propose(session, pid=pid))
    assert event["type"] == "proposal" and event["rooms"] == ["org:gp-torvet", "org:muni-aalby"]
    assert event["data"]["status"] == "pending" and event["data"]["patient_id"] == pid
