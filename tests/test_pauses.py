"""Pausing monitoring: who may, what is a valid pause, and the scheduler keeping quiet."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, func, select
from telekol.server.alerts.escalation import TIMEZONE
from telekol.server.alerts.scheduler import Scheduler, ensure_defaults
from telekol.server.care import episodes, pauses
from telekol.server.care.episodes import Conflict, EpisodeError, NotFound, NotPermitted
from telekol.server.models import Alert, Patient, User

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def patient_id(demo: dict, name: str) -> str:
    """Return the id of the demo patient called `name`."""
    return next(p["id"] for p in demo["patients"] if p["name"] == name)


def user(session: Session, username: str) -> User:
    """Return a demo user."""
    return session.exec(select(User).where(User.username == username)).one()


def pause(session: Session, demo: dict, starts: datetime = AT, ends: datetime = AT + 7 * DAY,
          reason: str = "Holiday", who: str = "nurse.aalby",
          name: str = "Poul Test Nielsen", at: datetime = AT) -> pauses.MonitoringPause:
    """Pause a patient's monitoring as `who`."""
    return pauses.start_pause(session, user(session, who), patient_id(demo, name), starts, ends,
                              reason, at=at)


def test_a_pause_is_in_force_between_start_and_end(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = pause(session, demo, starts=AT + DAY, ends=AT + 3 * DAY)
        assert pauses.paused_patient_ids(session, AT) == set()
        assert pauses.paused_patient_ids(session, AT + DAY) == {pid}
        assert pauses.active_pause(session, pid, AT + 2 * DAY) is row
        assert pauses.paused_patient_ids(session, AT + 3 * DAY) == set()
        assert [pauses.status(row, t) for t in (AT, AT + DAY, AT + 3 * DAY)] == [
            "planned", "active", "ended"]


@pytest.mark.parametrize(("starts", "ends", "reason", "message"), [
    (AT, AT, "Holiday", "end after it starts"),
    (AT + DAY, AT, "Holiday", "end after it starts"),
    (AT, AT + 90 * DAY + timedelta(seconds=1), "Holiday", "at most 90 days"),
    (AT - 3 * DAY, AT - DAY, "Holiday", "already be over"),
    (AT, AT + DAY, "   ", "reason is required"),
    (AT, AT + DAY, "x" * 501, "at most 500"),
    (AT.replace(tzinfo=None), AT + DAY, "Holiday", "offset"),
])
def test_an_invalid_pause_is_refused(engine, demo, starts, ends, reason, message) -> None:
    with Session(engine) as session, pytest.raises(EpisodeError, match=message):
        pause(session, demo, starts=starts, ends=ends, reason=reason)


def test_a_pause_may_last_exactly_ninety_days(engine, demo) -> None:
    with Session(engine) as session:
        assert pause(session, demo, ends=AT + 90 * DAY).ends_at == AT + 90 * DAY


def test_overlapping_pauses_are_refused_but_back_to_back_ones_are_not(engine, demo) -> None:
    with Session(engine) as session:
        pause(session, demo, starts=AT, ends=AT + 2 * DAY)
        with pytest.raises(Conflict):
            pause(session, demo, starts=AT + DAY, ends=AT + 4 * DAY)
        assert pause(session, demo, starts=AT + 2 * DAY, ends=AT + 4 * DAY).id is not None


@pytest.mark.parametrize(("who", "name", "refusal"), [
    ("doctor.hospital", "Karen Test Jensen", NotPermitted),  # specialist, not responsible
    ("nurse.boestrup", "Poul Test Nielsen", NotFound),  # not on the care team
    ("admin", "Poul Test Nielsen", NotFound),
])
def test_only_a_responsible_clinician_pauses(engine, demo, who, name, refusal) -> None:
    with Session(engine) as session, pytest.raises(refusal):
        pause(session, demo, who=who, name=name)


def test_the_treating_gp_may_pause_too(engine, demo) -> None:
    with Session(engine) as session:
        assert pause(session, demo, who="gp.torvet").created_by == user(session, "gp.torvet").id


def test_cancelling_ends_a_running_pause_at_once(engine, demo) -> None:
    pid = patient_id(demo, "Poul Test Nielsen")
    with Session(engine) as session:
        row = pause(session, demo)
        nurse = user(session, "nurse.aalby")
        pauses.cancel_pause(session, nurse, row.id or 0, AT + DAY)
        assert pauses.paused_patient_ids(session, AT + 2 * DAY) == set()
        assert pauses.effective_end(row) == AT + DAY
        assert pauses.status(row, AT + 2 * DAY) == "ended"
        assert pauses.resumed_at(session, AT + 2 * DAY) == {pid: AT + DAY}
        with pytest.raises(Conflict, match="already ended"):
            pauses.cancel_pause(session, nurse, row.id or 0, AT + 2 * DAY)


def test_a_pause_cancelled_before_it_began_counts_as_never_held(engine, demo) -> None:
    with Session(engine) as session:
        row = pause(session, demo, starts=AT + DAY, ends=AT + 2 * DAY)
        pauses.cancel_pause(session, user(session, "nurse.aalby"), row.id or 0, AT)
        assert pauses.status(row, AT + DAY) == "cancelled"
        assert pauses.resumed_at(session, AT + 3 * DAY) == {}
        assert pause(session, demo, starts=AT + DAY, ends=AT + 2 * DAY).id != row.id


def test_someone_off_the_team_cannot_cancel_a_pause(engine, demo) -> None:
    with Session(engine) as session:
        row = pause(session, demo)
        with pytest.raises(NotFound):
            pauses.cancel_pause(session, user(session, "nurse.boestrup"), row.id or 0, AT)
        with pytest.raises(NotFound):
            pauses.cancel_pause(session, user(session, "nurse.aalby"), 10**9, AT)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-12-01T08:00:00+01:00", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
    ("2026-12-01T07:00Z", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
    ("2026-12-01T08:00:00", None),  # no offset
    ("2026-12-01", None),
    ("2026-02-30T08:00:00Z", None),
    (None, None),
])
def test_instants_need_an_offset(raw, expected) -> None:
    if expected is None:
        with pytest.raises(EpisodeError):
            pauses.parse_instant(raw, "starts_at")
    else:
        assert pauses.parse_instant(raw, "starts_at") == expected


def evening_after_enrolment(engine) -> datetime:
    """Return 18:00 local, three days after the last demo patient was created."""
    with Session(engine) as session:
        created = session.exec(select(func.max(Patient.created_at))).one()
    day = created.astimezone(TIMEZONE).date() + timedelta(days=3)
    return datetime.combine(day, time(18), TIMEZONE)


def test_the_scheduler_expects_nothing_of_paused_or_finished_patients(engine, demo) -> None:
    ensure_defaults(engine)
    now = evening_after_enrolment(engine)
    paused, resumed, finished = (patient_id(demo, n) for n in (
        "Poul Test Nielsen", "Karen Test Jensen", "Birthe Test Andersen"))
    noon = now.replace(hour=12)
    with Session(engine) as session:
        nurse = user(session, "nurse.aalby")
        pauses.start_pause(session, nurse, paused, now - DAY, now + DAY, "Admitted", at=now)
        # Over at 13:00 today: yesterday's and today's 12:00 fell inside it.
        pauses.start_pause(session, nurse, resumed, noon - 2 * DAY, noon + timedelta(hours=1),
                           "Holiday", at=noon - 2 * DAY)
        episodes.consent_by(session, nurse, finished, "participation", False, at=now - DAY)
        session.commit()
    published: list[dict] = []
    Scheduler(engine, published.extend, clock=lambda: now).run_once()
    with Session(engine) as session:
        alerted = set(session.exec(select(Alert.patient_id).where(Alert.rule == "missing:spo2")))
    assert alerted == {p["id"] for p in demo["patients"]} - {paused, resumed, finished}
    Scheduler(engine, published.extend, clock=lambda: now + 2 * DAY).run_once()
    with Session(engine) as session:
        alerted = set(session.exec(select(Alert.patient_id).where(Alert.rule == "missing:spo2")))
    assert paused in alerted and resumed in alerted and finished not in alerted
