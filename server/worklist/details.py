"""What a work-list row shows beyond its place: latest values, the deciding parameter's trend.

Loaded only for the rows on screen (a page, or the few a live update redraws), with one
query per kind of data whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.server.alerts.rules.alert_marks import concerned_code
from telekol.server.models import Observation, Organization, User
from telekol.server.worklist.rows import Row

TREND_DAYS = 7
def parameter_of(rule: str) -> str | None:
    """Return the measurement a rule judges, as the trend shows it (None: symptoms, devices)."""
    code = concerned_code(rule)
    if code in ("bp_sys", "bp_dia"):
        return "bp"  # blood pressure's two limits share one measurement
    return code if code in MEASUREMENT_TYPES or code == "cat" else None


@dataclass(frozen=True)
class RowDetails:
    """The extra data of one row: newest value per type, the trend parameter's series."""

    latest: dict[str, Observation]
    code: str
    series: list[tuple[datetime, float]]


@dataclass(frozen=True)
class Details:
    """Extra data for the rows on screen, and the names the rows mention."""

    rows: dict[str, RowDetails]
    users: dict[int, str]
    organizations: dict[str, str]


def trend_code(row: Row) -> str:
    """Return the parameter whose trend a row shows: the deciding alert's, else SpO2."""
    deciding = row.status.deciding
    return (parameter_of(deciding.rule) if deciding else None) or "spo2"


def details_for(session: Session, rows: Sequence[Row], now: datetime) -> Details:
    """Load the extra data of the rows on screen (four queries)."""
    ids = [r.patient.id for r in rows]
    latest = _latest(session, ids)
    codes = {r.patient.id: trend_code(r) for r in rows}
    series = _series(session, codes, now - timedelta(days=TREND_DAYS))
    people = {a.acknowledged_by for r in rows for a in r.status.alerts if a.acknowledged_by}
    users = {int(uid or 0): name for uid, name in session.exec(
        select(User.id, User.display_name).where(col(User.id).in_(people))).all()}
    orgs = {o for r in rows for o in r.responsible.values() if o}
    names = dict(session.exec(select(Organization.id, Organization.name).where(
        col(Organization.id).in_(orgs))).all()) if orgs else {}
    return Details({pid: RowDetails(latest.get(pid, {}), codes[pid], series.get(pid, []))
                    for pid in ids}, users, names)


def _latest(session: Session, ids: Iterable[str]) -> dict[str, dict[str, Observation]]:
    newest = func.row_number().over(partition_by=(Observation.patient_id, Observation.type_code),
                                    order_by=col(Observation.effective).desc()).label("rank")
    ranked = select(Observation.id, newest).where(
        col(Observation.patient_id).in_(list(ids))).subquery()
    found: dict[str, dict[str, Observation]] = {}
    for row in session.exec(select(Observation).join(ranked, ranked.c.id == Observation.id)
                            .where(ranked.c.rank == 1)):
        found.setdefault(row.patient_id, {})[row.type_code] = row
    return found


def _series(session: Session, codes: dict[str, str], since: datetime,
            ) -> dict[str, list[tuple[datetime, float]]]:
    if not codes:
        return {}
    query = select(Observation.patient_id, Observation.type_code, Observation.effective,
                   Observation.value).where(
        col(Observation.patient_id).in_(list(codes)),
        col(Observation.type_code).in_(set(codes.values())),
        col(Observation.effective) >= since).order_by(col(Observation.effective))
    found: dict[str, list[tuple[datetime, float]]] = {}
    for patient_id, code, effective, value in session.exec(query):
        if codes[patient_id] == code and value is not None:
            found.setdefault(patient_id, []).append((effective, float(value)))
    return found
