"""Questionnaires a patient fills in on their own web pages, through every door's Recorder.

The answers are checked by the same parser devices use (device_gateway), so the web form
accepts exactly what a hub may send, and they are stored, triaged and alerted on by
server/ingest/recorder.py exactly like answers from a hub or entered by telephone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telekol.server import events
from telekol.server.alerts.store import rank
from telekol.server.care.episodes import current_episode
from telekol.server.db import utcnow
from telekol.server.device_messages.questionnaire_responses import (
    QuestionnaireAnswers,
    Rejection,
    parse_questionnaire_responses,
)
from telekol.server.ingest.questionnaires import WEB_SOURCE
from telekol.server.ingest.recorder import Recorder
from telekol.server.models import Organization, Patient


class InvalidAnswers(ValueError):
    """A web submission that does not answer the questionnaire; args[0] lists why."""


@dataclass(frozen=True)
class Submission:
    """A stored web submission: the score, what it raised, who to call, the events to push."""

    kind: str
    total: int
    observation_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    severity: str | None = None  # the worst alert the answers raised or updated
    monitoring: dict[str, str | None] | None = None  # {"name", "phone"} of who monitors


class QuestionnaireService:
    """Accept the questionnaires a patient fills in on the web pages."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.engine = engine
        self.clock = clock
        self.new_id = new_id

    def submit(self, patient_id: str, kind: str, answers: dict[str, Any],
               user_id: int | None = None, *, session: Session | None = None) -> Submission:
        """Validate, store and triage one response now; raise InvalidAnswers listing why.

        It commits `session` when given (a web request's own, whose connection the
        request keeps), or a session of its own on the engine.
        """
        now = self.clock()
        body = {"msg_id": self.new_id(), "taken_at": events.instant(now),
                "questionnaire": kind, "answers": answers}
        [item] = parse_questionnaire_responses(json.dumps(body).encode(), now)
        if isinstance(item, Rejection):
            raise InvalidAnswers(list(item.errors))
        if session is not None:
            return self._store(session, patient_id, kind, item, now, user_id)
        with Session(self.engine, expire_on_commit=False) as own:
            return self._store(own, patient_id, kind, item, now, user_id)

    def _store(self, session: Session, patient_id: str, kind: str, item: QuestionnaireAnswers,
               now: datetime, user_id: int | None) -> Submission:
        if session.get(Patient, patient_id) is None:
            raise InvalidAnswers([f"patient {patient_id} is not known"])
        recorder = Recorder(session, [patient_id], now, new_id=self.new_id, actor="user",
                            actor_user_id=user_id)
        row = recorder.answers(patient_id, item, received_at=now, source=WEB_SOURCE)
        recorded = recorder.finish()
        worst = max((a.severity for a in recorded.alerts), key=rank, default=None)
        monitoring = _monitoring(session, patient_id)
        session.commit()
        return Submission(kind, int(row.value or 0), row.id, recorded.events,
                          worst if worst in ("red", "yellow") else None, monitoring)


def _monitoring(session: Session, patient_id: str) -> dict[str, str | None] | None:
    episode = current_episode(session, patient_id)
    org = session.get(Organization, episode.monitoring_org_id) if episode else None
    return {"name": org.name, "phone": getattr(org, "phone", None)} if org else None
