"""Messages about a patient: the care team's own thread and the thread with the patient.

Channel "team" is between care-team members across sectors; the patient never sees it.
Channel "patient" is between the patient and their care team. Who may read follows who
may see the patient (server/care/access.py); who may write follows `may(..., "message_team" |
"message_patient", ...)`. Unread = messages by others newer than the reader's read mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.care.access import may, team_organizations, visible_patient, visible_patient_ids
from telekol.server.db import utcnow
from telekol.server.models import Message, MessageReadMark, Organization, Patient, User

CHANNELS = ("team", "patient")
POST_ACTION = {"team": "message_team", "patient": "message_patient"}
MAX_BODY = 4000
PAGE = 50
MAX_PAGE = 500
PREVIEW = 120


class MessageError(Exception):
    """A message request that cannot be carried out (the door picks the status)."""


class ThreadNotFound(MessageError):
    """The user may not see this patient's thread: answer exactly as if absent (404)."""


class NotAllowed(MessageError):
    """The user sees the thread but may not write in it (403)."""


class InvalidMessage(MessageError):
    """The request is malformed: unknown channel, empty or too long body (400)."""


class EmptyMessage(InvalidMessage):
    """The body holds nothing but white space (400)."""


def readable_patient(session: Session, user: User, patient_id: str, channel: str) -> Patient:
    """Return the patient whose `channel` thread `user` may read, or raise."""
    if channel not in CHANNELS:
        raise InvalidMessage(f"channel must be one of {', '.join(CHANNELS)}")
    patient = visible_patient(session, user, patient_id)
    if patient is None or (channel == "team" and user.role == "patient"):
        raise ThreadNotFound(f"patient {patient_id} is not known")
    return patient


def clean_body(body: Any) -> str:
    """Return the message text trimmed, or raise InvalidMessage."""
    if not isinstance(body, str):
        raise InvalidMessage("body must be a string")
    text = body.strip()
    if not text:
        raise EmptyMessage("the message is empty")
    if len(text) > MAX_BODY:
        raise InvalidMessage(f"the message is longer than {MAX_BODY} characters")
    return text


def post(session: Session, user: User, patient_id: str, channel: str, body: Any) -> Message:
    """Add a message by `user` to the patient's `channel` thread (flushed, not committed)."""
    readable_patient(session, user, patient_id, channel)
    if not may(session, user, POST_ACTION[channel], patient_id):
        raise NotAllowed(f"you may not write in the {channel} thread of this patient")
    assert user.id is not None, "the author must be a stored user"
    message = Message(patient_id=patient_id, channel=channel, author_user_id=user.id,
                      author_name=user.display_name, author_org=user.organization_id,
                      body=clean_body(body))
    session.add(message)
    session.flush()
    return message


def thread(session: Session, user: User, patient_id: str, channel: str, *,
           after: int | None = None, before: int | None = None,
           limit: int = PAGE) -> list[Message]:
    """Return a page of the thread, oldest first.

    `after`: the messages following that id; otherwise the newest ones (before `before`).
    """
    readable_patient(session, user, patient_id, channel)
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Message).where(Message.patient_id == patient_id, Message.channel == channel)
    if after is not None:
        return list(session.exec(query.where(col(Message.id) > after)
                                 .order_by(col(Message.id)).limit(limit)))
    if before is not None:
        query = query.where(col(Message.id) < before)
    newest = session.exec(query.order_by(col(Message.id).desc()).limit(limit)).all()
    return list(reversed(newest))


def mark_read(session: Session, user: User, patient_id: str, channel: str,
              up_to: int) -> int:
    """Mark the thread read up to message `up_to`; the mark never moves back. Return it."""
    readable_patient(session, user, patient_id, channel)
    newest = session.exec(select(func.max(Message.id)).where(
        Message.patient_id == patient_id, Message.channel == channel,
        col(Message.id) <= up_to)).one() or 0
    key = {"user_id": user.id, "patient_id": patient_id, "channel": channel}
    # Insert-if-absent, then a conditional update: two tabs marking at once can neither
    # collide on the key nor move the mark backwards.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(MessageReadMark).values(**key, last_read_id=0)
                    .on_conflict_do_nothing())
    session.execute(update(MessageReadMark).where(
        col(MessageReadMark.user_id) == user.id,
        col(MessageReadMark.patient_id) == patient_id,
        col(MessageReadMark.channel) == channel,
        col(MessageReadMark.last_read_id) < newest).values(last_read_id=newest))
    mark = session.exec(select(MessageReadMark.last_read_id).where(
        MessageReadMark.user_id == user.id, MessageReadMark.patient_id == patient_id,
        MessageReadMark.channel == channel)).one()
    return int(mark)


@dataclass(frozen=True)
class ThreadState:
    """One thread as the reader's overview sees it: newest message id and unread count."""

    patient_id: str
    channel: str
    newest_id: int
    unread: int


def thread_states(session: Session, user: User) -> list[ThreadState]:
    """Return every non-empty thread `user` may read, with their unread count (one query)."""
    mark = MessageReadMark
    unread = case((and_(col(Message.author_user_id) != user.id,
                        col(Message.id) > func.coalesce(col(mark.last_read_id), 0)), 1),
                  else_=0)
    query = (select(Message.patient_id, Message.channel, func.max(Message.id), func.sum(unread))
             .outerjoin(mark, and_(col(mark.user_id) == user.id,
                                   col(mark.patient_id) == col(Message.patient_id),
                                   col(mark.channel) == col(Message.channel)))
             .where(col(Message.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
             .group_by(col(Message.patient_id), col(Message.channel)))
    if user.role == "patient":
        query = query.where(Message.channel == "patient")
    return [ThreadState(pid, channel, int(newest or 0), int(count or 0))
            for pid, channel, newest, count in session.exec(query)]


@dataclass
class PatientThreads:
    """A patient's threads in the reader's overview."""

    patient: Patient
    unread: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    newest: Message | None = None


def overview(session: Session, user: User) -> list[PatientThreads]:
    """Return the patients with messages `user` may read, newest activity first.

    Three queries whatever the number of patients.
    """
    states = sorted(thread_states(session, user), key=lambda s: s.newest_id)
    if not states:
        return []
    ids = {s.patient_id for s in states}
    patients = {p.id: p for p in session.exec(select(Patient).where(col(Patient.id).in_(ids)))}
    newest = {m.id: m for m in session.exec(select(Message).where(
        col(Message.id).in_({s.newest_id for s in states})))}
    rows: dict[str, PatientThreads] = {}
    for state in states:  # ascending, so each patient ends on its newest message
        row = rows.setdefault(state.patient_id, PatientThreads(patients[state.patient_id]))
        row.unread[state.channel] = state.unread
        row.newest = newest[state.newest_id]
    return sorted(rows.values(), key=lambda r: -(r.newest.id or 0) if r.newest else 0)


def unread_total(session: Session, user: User) -> int:
    """Return how many messages by others `user` has not read, across every thread."""
    return sum(s.unread for s in thread_states(session, user))


def organization_names(session: Session, messages: list[Message]) -> dict[str, str]:
    """Return the names of the messages' authors' organisations (one query)."""
    ids = {m.author_org for m in messages if m.author_org}
    if not ids:
        return {}
    return dict(session.exec(select(Organization.id, Organization.name)
                             .where(col(Organization.id).in_(ids))).all())


def message_view(message: Message, patient: Patient, org_names: dict[str, str]) -> dict[str, Any]:
    """Render a message as /api and the live `message` event show it."""
    org = message.author_org
    return {
        "id": message.id, "patient": events.patient_ref(patient), "channel": message.channel,
        "body": message.body, "created_at": events.instant(message.created_at),
        "author": {"id": message.author_user_id, "name": message.author_name,
                   "kind": "care_team" if org else "patient",
                   "organization": {"id": org, "name": org_names.get(org, org)} if org else None},
    }


def live_event(session: Session, message: Message, patient: Patient) -> dict[str, Any]:
    """Return the `message` event, addressed to the rooms allowed to read the thread.

    The team thread goes to the care-team organisations only, never to the patient.
    """
    orgs = team_organizations(session, [patient.id]).get(patient.id, [])
    if message.channel == "team":
        rooms = [f"org:{org}" for org in sorted(orgs)]
    else:
        rooms = events.rooms_for(patient.id, orgs)
    data = message_view(message, patient, organization_names(session, [message]))
    return {"type": "message", "rooms": rooms, "data": data}


def preview(message: Message) -> str:
    """Return the start of a message body for overviews."""
    text = " ".join(message.body.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


DEMO_TEAM = [  # Poul Test Nielsen: the municipal nurse and the GP (demo data)
    ("nurse.aalby", "Poul har haft saturation på 89-90 % de sidste tre dage og hoster mere. "
                    "Skal vi overveje at se ham i klinikken?"),
    ("gp.torvet", "Tak for besked. Jeg ringer til ham i eftermiddag og vurderer, om han skal "
                  "have en prednisolonkur. Fortsæt de daglige målinger."),
    ("nurse.aalby", "Aftalt. Jeg har bedt ham måle igen i morgen tidlig og ringe til os, "
                    "hvis han får det værre."),
]
DEMO_PATIENT = [  # Karen Test Jensen and her care team (demo data)
    ("patient.karen", "Hej. Jeg glemte at måle i går, fordi jeg var til lægen. "
                      "Skal jeg måle to gange i dag?"),
    ("nurse.aalby", "Hej Karen. Nej, mål bare én gang i dag som du plejer. "
                    "Tak fordi du skriver."),
]


def seed_demo_messages(session: Session) -> None:
    """Add the demo message threads (idempotent; skipped when a patient is absent)."""
    for cpr, channel, lines in (("1503459995", "team", DEMO_TEAM),
                                ("0101419996", "patient", DEMO_PATIENT)):
        patient = session.exec(select(Patient).where(Patient.cpr == cpr)).first()
        if patient is None or session.exec(select(Message.id).where(
                Message.patient_id == patient.id, Message.channel == channel)).first():
            continue
        for age, (username, body) in zip(range(len(lines), 0, -1), lines, strict=True):
            author = session.exec(select(User).where(User.username == username)).first()
            if author is not None:  # written over the last hours, the newest last
                post(session, author, patient.id, channel, body).created_at = (
                    utcnow() - timedelta(minutes=40 * age))
    session.flush()
