"""Give the demo patients their past, once: `telekol seed --demo` and `telekol demo` call it.

Each named demo patient (server/demo/seed.py PATIENTS) gets `days` days of their hub's uploads
(server/demo/history.py), each extra patient of `--patients N` a short history of morning
SpO2 and pulse only. Everything is stored through the real service path and answered as in
real life (server/demo/replay.py). Enrolment (episode start, consent, limits, rule
settings, care plan version 1) is moved back to the first day of the history, so nothing
is dated after the readings it governs. A patient who already has a reading is left as
they are: running it again adds nothing. Not the test template's business: tests call
`seed_demo` alone and stay fast.
"""

from __future__ import annotations

import logging
import time as clock
from datetime import datetime, time, timedelta

from sqlalchemy import exists, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telekol.server.db import session_scope, utcnow
from telekol.server.demo.history import batched, history, merged
from telekol.server.demo.profiles import HISTORY_DAYS, PROFILES, profile_for
from telekol.server.demo.readings import TIMEZONE
from telekol.server.demo.replay import HistoryReplay, ReplaySummary
from telekol.server.models import (
    CarePlanVersion,
    Consent,
    Device,
    Episode,
    Observation,
    Patient,
    PatientRuleSettings,
    Threshold,
)

log = logging.getLogger("telekol.demo")
EXTRA_DAYS = 14
EXTRA_BATCH = (timedelta(hours=1), 500)  # window and size of one transaction for extra patients
# Rows written at enrolment, and their time column, moved back to the start of the history.
ENROLMENT = ((Episode, "started_at"), (Consent, "recorded_at"), (Threshold, "set_at"),
             (PatientRuleSettings, "set_at"), (CarePlanVersion, "changed_at"))


def seed_demo_history(engine: Engine, *, now: datetime | None = None, days: int = HISTORY_DAYS,
                      extra_days: int = EXTRA_DAYS, seed: int = 1) -> ReplaySummary:
    """Store the history of every demo patient who has no reading yet; return what happened."""
    hubs = fresh_hubs(engine) if days > 0 else []
    if not hubs:
        return ReplaySummary()
    now, started, short_days = now or utcnow(), clock.perf_counter(), min(days, extra_days)
    named = [(device, cpr, patient) for device, cpr, patient in hubs if cpr in PROFILES]
    extra = [(device, cpr, patient) for device, cpr, patient in hubs if cpr not in PROFILES]
    log.info("storing the history of %d demo patients (once; %d days, extra patients %d) ...",
             len(hubs), days, short_days)
    with session_scope(engine) as session:
        backdate_enrolment(session, [patient for *_, patient in named], now, days)
        backdate_enrolment(session, [patient for *_, patient in extra], now, short_days)
    uploads = merged(history(profile_for(cpr), device, now, days, seed)
                     for device, cpr, _ in named)
    short = merged(history(profile_for(cpr), device, now, short_days, seed, light=True)
                   for device, cpr, _ in extra)
    summary = HistoryReplay(engine, now, seed).run(
        merged([uploads, list(batched(short, *EXTRA_BATCH))]))
    log.info("demo history: %d patients, %d uploads, %d alerts (%d escalated, %d acknowledged, "
             "%d resolved) in %.1f s", len(hubs), summary.uploads, summary.alerts,
             summary.escalated, summary.acknowledged, summary.resolved,
             clock.perf_counter() - started)
    return summary


def fresh_hubs(engine: Engine) -> list[tuple[str, str, str]]:
    """Return (device id, CPR, patient id) of the demo hubs whose patient has no reading."""
    measured = exists().where(col(Observation.patient_id) == col(Patient.id))
    with Session(engine) as session:
        rows = session.exec(select(Device.id, Patient.cpr, Patient.id).join(
            Patient, col(Patient.id) == col(Device.patient_id)).where(
            col(Device.id).startswith("hub-"), ~measured).order_by(col(Device.id))).all()
    return [(device, cpr, patient) for device, cpr, patient in rows]


def backdate_enrolment(session: Session, patient_ids: list[str], now: datetime,
                       days: int) -> None:
    """Date the patients' enrolment rows no later than local midnight `days - 1` days ago."""
    first = now.astimezone(TIMEZONE).date() - timedelta(days=days - 1)
    start = datetime.combine(first, time(), TIMEZONE)
    for model, name in ENROLMENT:
        column = getattr(model, name)
        session.execute(update(model).where(col(model.patient_id).in_(patient_ids),
                                            col(column) > start).values({name: start})
                        .execution_options(synchronize_session=False))

