"""The message service: who reads and writes which thread, read marks, unread counts, rooms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select
from telekol.server.care import access, messages
from telekol.server.demo.seed import seed_demo_messages
from telekol.server.models import Message, Patient, User

KAREN, POUL, ELSE = "0101419996", "1503459995", "1406449990"


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """Yield a session on a fresh demo database."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def user(session: Session, username: str) -> User:
    """Return a demo user."""
    return session.exec(select(User).where(User.username == username)).one()


def patient_id(session: Session, cpr: str) -> str:
    """Return a demo patient's id by CPR."""
    return session.exec(select(Patient.id).where(Patient.cpr == cpr)).one()


def write(session: Session, username: str, cpr: str, channel: str, body: str) -> Message:
    """Post a message as a demo user."""
    return messages.post(session, user(session, username), patient_id(session, cpr), channel, body)


def test_a_message_is_stored_trimmed_with_its_author_and_organisation(session) -> None:
    message = write(session, "nurse.aalby", POUL, "team", "  Ring til Poul i morgen.\n ")
    assert message.id is not None
    assert (message.body, message.author_name, message.author_org) == (
        "Ring til Poul i morgen.", "Sygeplejerske Mette Holm", "muni-aalby")


@pytest.mark.parametrize(("body", "error"), [
    ("", messages.EmptyMessage),
    ("  \n\t ", messages.EmptyMessage),
    ("x" * (messages.MAX_BODY + 1), messages.InvalidMessage),
    (None, messages.InvalidMessage),
    (42, messages.InvalidMessage),
])
def test_an_empty_or_too_long_body_is_refused(session, body, error) -> None:
    with pytest.raises(error):
        write(session, "nurse.aalby", POUL, "team", body)


def test_a_body_of_exactly_the_limit_is_accepted_once_trimmed(session) -> None:
    text = "x" * messages.MAX_BODY
    assert write(session, "nurse.aalby", POUL, "team", f"  {text}  ").body == text


def test_an_unknown_channel_is_refused(session) -> None:
    with pytest.raises(messages.InvalidMessage, match="channel"):
        write(session, "nurse.aalby", POUL, "gossip", "Hej")


@pytest.mark.parametrize(("username", "cpr", "channel", "outcome"), [
    ("nurse.aalby", KAREN, "team", None),
    ("gp.torvet", KAREN, "patient", None),
    ("doctor.hospital", KAREN, "team", None),
    ("patient.karen", KAREN, "patient", None),
    ("patient.karen", KAREN, "team", messages.ThreadNotFound),  # never the team thread
    ("patient.karen", POUL, "patient", messages.ThreadNotFound),  # only herself
    ("nurse.boestrup", KAREN, "patient", messages.ThreadNotFound),  # not on the care team
    ("gp.skovvej", ELSE, "team", messages.ThreadNotFound),  # no sharing consent
    ("nurse.boestrup", ELSE, "team", None),  # the data custodian
    ("admin", KAREN, "team", messages.ThreadNotFound),  # no clinical data
])
def test_who_may_write_in_which_thread(session, username, cpr, channel, outcome) -> None:
    if outcome is None:
        assert write(session, username, cpr, channel, "Hej").channel == channel
    else:
        with pytest.raises(outcome):
            write(session, username, cpr, channel, "Hej")


def test_writing_asks_the_action_table_and_refuses_one_who_sees_but_may_not(
        session, monkeypatch) -> None:
    monkeypatch.setitem(access.ACTIONS, "message_team", (("doctor", "gp"), "team"))
    with pytest.raises(messages.NotAllowed):
        write(session, "nurse.aalby", POUL, "team", "Hej")
    assert write(session, "nurse.aalby", POUL, "patient", "Hej").id


def test_a_thread_pages_by_id_with_the_newest_last(session) -> None:
    nurse, poul = user(session, "nurse.aalby"), patient_id(session, POUL)
    ids = [write(session, "nurse.aalby", POUL, "patient", f"besked {n}").id for n in range(5)]

    def page(**kwargs) -> list[int | None]:
        return [m.id for m in messages.thread(session, nurse, poul, "patient", **kwargs)]

    assert page(limit=3) == ids[2:]
    assert page(before=ids[2], limit=3) == ids[:2]
    assert page(after=ids[1], limit=2) == ids[2:4]
    assert page(after=ids[-1]) == []


def test_a_patient_cannot_read_the_team_thread(session) -> None:
    with pytest.raises(messages.ThreadNotFound):
        messages.thread(session, user(session, "patient.karen"), patient_id(session, KAREN),
                        "team")


def test_unread_counts_only_others_messages_per_thread(session) -> None:
    karen = patient_id(session, KAREN)
    before = _unread(session, "gp.torvet", karen)
    write(session, "nurse.aalby", KAREN, "team", "Til lægen")
    write(session, "patient.karen", KAREN, "patient", "Til plejen")
    write(session, "gp.torvet", KAREN, "team", "Mit eget")
    assert _unread(session, "gp.torvet", karen) == {
        "team": before["team"] + 1, "patient": before["patient"] + 1}
    assert _unread(session, "patient.karen", karen)["team"] == 0  # never the team thread


def test_the_unread_total_is_the_sum_over_every_visible_thread(session) -> None:
    nurse = user(session, "nurse.aalby")
    states = messages.thread_states(session, nurse)
    assert states, "the demo has threads nurse.aalby can read"
    assert messages.unread_total(session, nurse) == sum(s.unread for s in states)


def test_unread_covers_only_patients_the_user_may_see(session) -> None:
    write(session, "nurse.boestrup", ELSE, "team", "Kun Bøstrup ser Else")
    else_id = patient_id(session, ELSE)
    for username in ("gp.skovvej", "nurse.aalby", "admin", "patient.karen"):
        seen = {s.patient_id for s in messages.thread_states(session, user(session, username))}
        assert else_id not in seen, username
    assert else_id in {s.patient_id for s in messages.thread_states(
        session, user(session, "nurse.boestrup"))}


def test_marking_read_clears_the_count_and_never_moves_back(session) -> None:
    gp, karen = user(session, "gp.torvet"), patient_id(session, KAREN)
    first = write(session, "nurse.aalby", KAREN, "team", "Første").id
    second = write(session, "nurse.aalby", KAREN, "team", "Anden").id
    assert first is not None and second is not None
    assert messages.mark_read(session, gp, karen, "team", second) == second
    assert _unread(session, "gp.torvet", karen)["team"] == 0
    assert messages.mark_read(session, gp, karen, "team", first) == second  # not backwards
    third = write(session, "nurse.aalby", KAREN, "team", "Tredje").id
    assert _unread(session, "gp.torvet", karen)["team"] == 1
    assert third is not None


def test_a_read_mark_beyond_the_thread_does_not_swallow_later_messages(session) -> None:
    gp, karen = user(session, "gp.torvet"), patient_id(session, KAREN)
    last = write(session, "nurse.aalby", KAREN, "team", "Nu").id
    assert last is not None
    assert messages.mark_read(session, gp, karen, "team", last + 1000) == last
    write(session, "nurse.aalby", KAREN, "team", "Senere")
    assert _unread(session, "gp.torvet", karen)["team"] == 1


def test_the_overview_lists_patients_with_the_newest_activity_first(session) -> None:
    write(session, "nurse.aalby", POUL, "patient", "Ældst")
    newest = write(session, "gp.torvet", KAREN, "team", "Nyest")
    rows = messages.overview(session, user(session, "nurse.aalby"))
    assert rows[0].patient.cpr == KAREN and rows[0].newest is not None
    assert rows[0].newest.id == newest.id
    assert [r.newest.id for r in rows if r.newest] == sorted(
        (r.newest.id for r in rows if r.newest), reverse=True)


def test_unread_counts_take_the_same_number_of_queries_for_one_patient_or_many(
        session, engine) -> None:
    nurse = user(session, "nurse.boestrup")
    write(session, "gp.skovvej", "2207389998", "team", "Inge")
    one = _queries(engine, lambda: messages.overview(session, nurse))
    for cpr in ("0911509997", "1812479991", ELSE):
        write(session, "nurse.boestrup", cpr, "team", "Flere")
        write(session, "nurse.boestrup", cpr, "patient", "Flere")
    assert len(messages.overview(session, nurse)) >= 4
    assert _queries(engine, lambda: messages.overview(session, nurse)) == one
    assert _queries(engine, lambda: messages.unread_total(session, nurse)) == 1


@pytest.mark.parametrize("cpr", [KAREN, POUL, ELSE])
def test_a_team_message_goes_to_the_care_teams_rooms_and_never_to_the_patient(
        session, cpr) -> None:
    author = "nurse.boestrup" if cpr == ELSE else "gp.torvet"
    pid = patient_id(session, cpr)
    message = write(session, author, cpr, "team", "Kun for plejeteamet")
    patient = session.get(Patient, pid)
    assert patient is not None
    event = messages.live_event(session, message, patient)
    orgs = access.team_organizations(session, [pid])[pid]
    assert event["type"] == "message" and event["data"]["body"] == "Kun for plejeteamet"
    assert event["rooms"] == [f"org:{org}" for org in sorted(orgs)]
    assert f"patient:{pid}" not in event["rooms"]
    patient_user = User(username="x", password_hash="x", display_name="x", role="patient",
                        patient_id=pid)
    assert not set(access.rooms_of(patient_user)) & set(event["rooms"])


def test_a_message_to_the_patient_reaches_the_patient_and_the_care_team(session) -> None:
    karen = patient_id(session, KAREN)
    message = write(session, "nurse.aalby", KAREN, "patient", "Hej Karen")
    patient = session.get(Patient, karen)
    assert patient is not None
    event = messages.live_event(session, message, patient)
    assert f"patient:{karen}" in event["rooms"]
    assert {"org:muni-aalby", "org:gp-torvet", "org:hosp-lung"} <= set(event["rooms"])
    assert event["data"]["author"]["organization"] == {
        "id": "muni-aalby", "name": "Hjemmesygeplejen, Aalby Kommune"}


def test_the_demo_threads_exist_once_however_often_they_are_seeded(session) -> None:
    def counts() -> dict[tuple[str, str], list[str]]:
        found: dict[tuple[str, str], list[str]] = {}
        rows = session.exec(select(Patient.cpr, Message.channel, User.username)
                            .join(Patient, col(Patient.id) == col(Message.patient_id))
                            .join(User, col(User.id) == col(Message.author_user_id))
                            .order_by(col(Message.id)))
        for cpr, channel, username in rows:
            found.setdefault((cpr, channel), []).append(username)
        return found

    seeded = counts()
    assert seeded[(POUL, "team")] == ["nurse.aalby", "gp.torvet", "nurse.aalby"]
    assert seeded[(KAREN, "patient")] == ["patient.karen", "nurse.aalby"]
    seed_demo_messages(session)
    assert counts() == seeded


def _unread(session: Session, username: str, pid: str) -> dict[str, int]:
    found = dict.fromkeys(messages.CHANNELS, 0)
    for state in messages.thread_states(session, user(session, username)):
        if state.patient_id == pid:
            found[state.channel] = state.unread
    return found


def _queries(engine, action) -> int:
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)
