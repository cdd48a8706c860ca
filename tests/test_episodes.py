"""Episodes as a service: handing responsibility over, accepting it, and consent."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select
from telekol.server.care import episodes, handovers
from telekol.server.care.access import may, visible_patient
from telekol.server.care.episodes import Conflict, EpisodeError, NotFound, NotPermitted
from telekol.server.models import CareTeamMember, Episode, Handover, User

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def patient_id(demo: dict, name: str) -> str:
    """Return the id of the demo patient called `name`."""
    return next(p["id"] for p in demo["patients"] if p["name"] == name)


def user(session: Session, username: str) -> User:
    """Return a demo user."""
    found = session.exec(select(User).where(User.username == username)).one()
    return found


def ask(session: Session, demo: dict, who: str = "nurse.aalby", name: str = "Poul Test Nielsen",
        part: str = "monitoring", to: str = "muni-boestrup",
        reason: str = "The patient moves to Bøstrup") -> Handover:
    """Request a handover as `who`."""
    return handovers.request_handover(session, user(session, who), patient_id(demo, name), part,
                                     to, reason, at=AT)


def member(session: Session, pid: str, org: str) -> CareTeamMember | None:
    """Return an organisation's care-team row for the patient."""
    return session.get(CareTeamMember, (pid, org))


def test_an_accepted_handover_moves_monitoring_and_the_roles_follow(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = ask(session, demo)
        assert row.status == "pending" and row.from_org_id == "muni-aalby"
        assert episodes.current_episode(session, pid).monitoring_org_id == "muni-aalby"
        handover_id = row.id
        handovers.decide_handover(session, user(session, "nurse.boestrup"), handover_id, True,
                                 "Welcome", AT)
        session.commit()
    with Session(engine) as session:
        episode = episodes.current_episode(session, pid)
        assert (episode.monitoring_org_id, episode.treatment_org_id,
                episode.custodian_org_id) == ("muni-boestrup", "gp-torvet", "muni-aalby")
        assert member(session, pid, "muni-boestrup").role == "monitoring"
        assert member(session, pid, "muni-boestrup").sees_data
        assert member(session, pid, "muni-aalby").role == "member"  # still the custodian
        assert visible_patient(session, user(session, "nurse.aalby"), pid) is not None
        assert session.get(Handover, handover_id).status == "accepted"
        assert session.get(Handover, handover_id).decision_note == "Welcome"


def test_an_organisation_outside_the_team_joins_it_on_acceptance(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        assert member(session, pid, "hosp-lung") is None
        doctor = user(session, "doctor.hospital")
        assert visible_patient(session, doctor, pid) is None
        row = ask(session, demo, who="gp.torvet", part="treatment", to="hosp-lung")
        handovers.decide_handover(session, doctor, row.id, True, "", AT)
        session.commit()
        assert member(session, pid, "hosp-lung").role == "treatment"
        assert member(session, pid, "gp-torvet").role == "member"
        assert may(session, doctor, "set_thresholds", pid)
        assert not may(session, user(session, "gp.torvet"), "set_thresholds", pid)


@pytest.mark.parametrize(("who", "name", "part", "to", "reason", "refusal"), [
    ("gp.torvet", "Poul Test Nielsen", "monitoring", "muni-boestrup", "x", NotPermitted),
    ("nurse.aalby", "Poul Test Nielsen", "treatment", "gp-skovvej", "x", NotPermitted),
    ("doctor.hospital", "Karen Test Jensen", "monitoring", "muni-boestrup", "x", NotPermitted),
    ("nurse.boestrup", "Poul Test Nielsen", "monitoring", "muni-boestrup", "x", NotFound),
    ("nurse.aalby", "Poul Test Nielsen", "monitoring", "no-such-org", "x", EpisodeError),
    ("nurse.aalby", "Poul Test Nielsen", "monitoring", "muni-aalby", "x", EpisodeError),
    ("nurse.aalby", "Poul Test Nielsen", "monitoring", "muni-boestrup", "  ", EpisodeError),
    ("nurse.aalby", "Poul Test Nielsen", "supervision", "muni-boestrup", "x", EpisodeError),
    ("gp.torvet", "Poul Test Nielsen", "treatment", "muni-boestrup", "x", EpisodeError),
    ("nurse.boestrup", "Else Test Olsen", "monitoring", "muni-aalby", "x", Conflict),
])
def test_a_handover_request_is_refused_with_the_reason(engine, demo, who, name, part, to,
                                                       reason, refusal) -> None:
    with Session(engine) as session:
        with pytest.raises(refusal) as raised:
            ask(session, demo, who=who, name=name, part=part, to=to, reason=reason)
        assert type(raised.value) is refusal
        assert session.exec(select(Handover)).all() == []


def test_without_sharing_consent_only_the_custodian_can_receive(engine, demo) -> None:
    with Session(engine) as session, pytest.raises(Conflict, match="not consented to sharing"):
        ask(session, demo, who="nurse.boestrup", name="Else Test Olsen", to="muni-aalby")


def test_one_pending_handover_per_responsibility(engine, demo) -> None:
    with Session(engine) as session:
        ask(session, demo)
        with pytest.raises(Conflict, match="already pending"):
            ask(session, demo, to="hosp-lung")
        other = ask(session, demo, who="gp.torvet", part="treatment", to="gp-skovvej")
        assert other.status == "pending"


@pytest.mark.parametrize(("who", "refusal"), [
    ("nurse.aalby", NotPermitted),  # the asking organisation cannot accept for the receiver
    ("gp.torvet", NotFound),  # on the team, but neither side of the handover
    ("gp.skovvej", NotFound),
    ("admin", NotFound),
])
def test_only_the_receiving_organisation_decides(engine, demo, who, refusal) -> None:
    with Session(engine) as session:
        row = ask(session, demo)
        with pytest.raises(refusal):
            handovers.decide_handover(session, user(session, who), row.id, True, "", AT)
        assert session.get(Handover, row.id).status == "pending"


def test_a_secretary_of_the_receiver_cannot_accept(engine, demo) -> None:
    with Session(engine) as session:
        secretary = User(username="sec.boestrup", password_hash="x", display_name="Sekretær",
                         role="secretary", organization_id="muni-boestrup")
        session.add(secretary)
        row = ask(session, demo)
        with pytest.raises(NotPermitted, match="nurse, doctor or GP"):
            handovers.decide_handover(session, secretary, row.id, True, "", AT)


def test_a_rejected_handover_changes_nothing_and_cannot_be_decided_again(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = ask(session, demo)
        receiver = user(session, "nurse.boestrup")
        handovers.decide_handover(session, receiver, row.id, False, "No capacity", AT)
        assert row.status == "rejected" and row.decided_by == receiver.id
        with pytest.raises(Conflict, match="already rejected"):
            handovers.decide_handover(session, receiver, row.id, True, "", AT)
        assert episodes.current_episode(session, pid).monitoring_org_id == "muni-aalby"
        assert member(session, pid, "muni-boestrup") is None


def test_the_asking_organisation_withdraws_but_the_receiver_cannot(engine, demo) -> None:
    with Session(engine) as session:
        row = ask(session, demo)
        with pytest.raises(NotPermitted):
            handovers.withdraw_handover(session, user(session, "nurse.boestrup"), row.id)
        handovers.withdraw_handover(session, user(session, "nurse.aalby"), row.id, "Mistake")
        assert row.status == "withdrawn"
        with pytest.raises(Conflict):
            handovers.decide_handover(session, user(session, "nurse.boestrup"), row.id, True)


def test_acceptance_is_refused_when_sharing_consent_was_withdrawn_meanwhile(engine,
                                                                           demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = ask(session, demo)
        episodes.consent_by(session, user(session, "nurse.aalby"), pid, "sharing", False,
                            method="verbal", at=AT)
        with pytest.raises(Conflict, match="consent"):
            handovers.decide_handover(session, user(session, "nurse.boestrup"), row.id, True)
        assert session.get(Handover, row.id).status == "pending"


def test_acceptance_is_refused_when_the_responsibility_moved_meanwhile(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = ask(session, demo)
        episode = episodes.current_episode(session, pid)
        episode.monitoring_org_id = "hosp-lung"  # as if another handover had been accepted
        session.add(episode)
        session.flush()
        with pytest.raises(Conflict, match="moved"):
            handovers.decide_handover(session, user(session, "nurse.boestrup"), row.id, True)


def test_the_receiver_sees_name_and_birth_date_of_incoming_handovers(engine, demo) -> None:
    with Session(engine) as session:
        ask(session, demo)
        receiver = user(session, "nurse.boestrup")
        [view] = handovers.handover_views(
            session, handovers.handovers_of(session, receiver, "incoming"))
        assert view.patient_name == "Poul Test Nielsen"
        assert view.birth_date == date(1945, 3, 15)  # CPR 150345-9995
        assert (view.from_name, view.requested_by_name) == (
            "Hjemmesygeplejen, Aalby Kommune", "Sygeplejerske Mette Holm")
        assert handovers.handovers_of(session, receiver, "outgoing") == []
        assert len(handovers.handovers_of(session, user(session, "nurse.aalby"), "outgoing")) == 1
        with pytest.raises(EpisodeError):
            handovers.handovers_of(session, receiver, "sideways")


def test_withdrawn_participation_finishes_the_episode_and_keeps_the_data(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = ask(session, demo)
        episodes.consent_by(session, user(session, "gp.torvet"), pid, "participation", False,
                            method="written", note="Does not want to measure", at=AT)
        session.commit()
        episode = session.exec(select(Episode).where(Episode.patient_id == pid)).one()
        assert (episode.status, episode.ended_at) == ("finished", AT)
        assert session.get(Handover, row.id).status == "withdrawn"
        assert visible_patient(session, user(session, "nurse.aalby"), pid) is not None
        assert pid in episodes.finished_patient_ids(session)
        assert not may(session, user(session, "nurse.aalby"), "hand_over", pid)
        history = episodes.consent_history(session, pid)
        assert (history[0].scope, history[0].granted, history[0].recorded_by_name) == (
            "participation", False, "Praktiserende læge Ole Berg")


def test_withdrawn_sharing_leaves_only_the_custodian(engine, demo) -> None:
    pid = patient_id(demo, "Karen Test Jensen")
    with Session(engine) as session:
        episodes.consent_by(session, user(session, "nurse.aalby"), pid, "sharing", False,
                            method="verbal", at=AT)
        session.commit()
        seeing = {u: visible_patient(session, user(session, u), pid) is not None
                  for u in ("nurse.aalby", "gp.torvet", "doctor.hospital")}
        assert seeing == {"nurse.aalby": True, "gp.torvet": False, "doctor.hospital": False}
        episodes.consent_by(session, user(session, "nurse.aalby"), pid, "sharing", True,
                            method="written", at=AT)
        assert visible_patient(session, user(session, "gp.torvet"), pid) is not None


@pytest.mark.parametrize(("who", "name", "granted", "refusal"), [
    ("doctor.hospital", "Karen Test Jensen", False, NotPermitted),  # a specialist only
    ("gp.skovvej", "Else Test Olsen", True, NotFound),  # no sharing consent: cannot see her
    ("nurse.aalby", "Poul Test Nielsen", "no", EpisodeError),
])
def test_consent_is_recorded_only_by_those_allowed(engine, demo, who, name, granted,
                                                   refusal) -> None:
    with Session(engine) as session:
        before = len(episodes.consent_history(session, patient_id(demo, name)))
        with pytest.raises(refusal):
            episodes.consent_by(session, user(session, who), patient_id(demo, name), "sharing",
                                granted, at=AT)
        assert len(episodes.consent_history(session, patient_id(demo, name))) == before


def test_team_event_names_the_team_and_the_receiver(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        from telekol.server.models import Patient

        event = episodes.team_event(session, session.get(Patient, pid), "handover_requested",
                                    ["muni-boestrup"])
    assert event["type"] == "team"
    assert event["rooms"] == ["org:gp-torvet", "org:muni-aalby", "org:muni-boestrup",
                              f"patient:{pid}"]
    assert event["data"]["change"] == "handover_requested"
