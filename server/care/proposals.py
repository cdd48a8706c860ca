"""Threshold proposals: a care-team clinician proposes new limits for one measurement, the
treatment-responsible doctor or GP approves (a new care plan version) or rejects them, and
the proposer may withdraw while the proposal is pending (service layer).

A proposal remembers the plan version it was made against; if the limits of its
measurement changed since, it can still be approved, and views show both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.care import plan as care_plan
from telekol.server.care.access import may, team_organizations, visible_patient, visible_patient_ids
from telekol.server.care.episodes import current_episode
from telekol.server.care.free_text import checked_text
from telekol.server.care.plan import CarePlanError, NotAllowed, StaleVersion
from telekol.server.care.plan_content import as_json, parse_content, parse_limits, summarize
from telekol.server.db import utcnow
from telekol.server.models import ThresholdProposal, User

STATUSES = ("pending", "approved", "rejected", "withdrawn")


class WrongState(CarePlanError):
    """The proposal has been decided or withdrawn already."""


def find(session: Session, user: User, proposal_id: int) -> ThresholdProposal | None:
    """Return the proposal if `user` may see its patient, else None (as if absent)."""
    row = session.get(ThresholdProposal, proposal_id)
    if row is None or visible_patient(session, user, row.patient_id) is None:
        return None
    return row


def propose(session: Session, user: User, patient_id: str, measurement: Any, limits: Any,
            reason: Any, base_version: Any = None) -> ThresholdProposal:
    """Propose new limits for one measurement, against the current plan version."""
    if not may(session, user, "propose_thresholds", patient_id):
        raise NotAllowed("only clinicians on the patient's care team may propose thresholds")
    episode = current_episode(session, patient_id)
    current = care_plan.current_version(session, patient_id)
    if episode is None or current is None or current.episode_id != episode.id:
        raise CarePlanError("the patient has no current care plan to propose a change to")
    if base_version is not None and base_version != current.version:
        raise StaleVersion(current)
    proposed = parse_limits(str(measurement), limits)
    text = _text(reason, "reason", required=True)
    if care_plan.content_of(current).thresholds.get(str(measurement)) == proposed:
        raise CarePlanError("the proposed limits are the plan's current limits")
    row = ThresholdProposal(
        episode_id=episode.id, patient_id=patient_id, base_version=current.version,
        measurement=str(measurement), proposed=proposed.model_dump(), reason=text,
        proposed_by=user.id or 0, proposed_by_name=user.display_name,
        proposed_by_org=user.organization_id, proposed_at=utcnow())
    session.add(row)
    session.flush()
    return row


def approve(session: Session, user: User, row: ThresholdProposal, note: Any = None) -> None:
    """Approve a pending proposal: a new plan version with its limits (unless already so)."""
    _check_decider(session, user, row)
    episode = current_episode(session, row.patient_id)
    current = care_plan.current_version(session, row.patient_id)
    if episode is None or current is None or current.episode_id != row.episode_id:
        raise CarePlanError("the proposal's episode has ended")
    old = care_plan.content_of(current)
    data = as_json(old)
    data["thresholds"][row.measurement] = dict(row.proposed)
    new = parse_content(data)
    result = current
    if new != old:
        summary = f"approved proposal #{row.id} from {row.proposed_by_name}: {summarize(old, new)}"
        result = care_plan.record_version(session, episode, new, author=user, previous=current,
                                          summary=summary)
    _decide(session, row, user, "approved", note, result.version)


def reject(session: Session, user: User, row: ThresholdProposal, note: Any) -> None:
    """Reject a pending proposal with a note saying why."""
    _check_decider(session, user, row)
    _decide(session, row, user, "rejected", _text(note, "note", required=True), None)


def withdraw(session: Session, user: User, row: ThresholdProposal) -> None:
    """Withdraw one's own pending proposal."""
    if row.proposed_by != user.id:
        raise NotAllowed("only the clinician who made a proposal may withdraw it")
    _check_pending(row)
    _decide(session, row, user, "withdrawn", None, None)


def _check_decider(session: Session, user: User, row: ThresholdProposal) -> None:
    if not may(session, user, "set_thresholds", row.patient_id):
        raise NotAllowed("only a doctor of the organisation responsible for treatment may "
                         "decide threshold proposals")
    _check_pending(row)


def _check_pending(row: ThresholdProposal) -> None:
    if row.status != "pending":
        raise WrongState(f"proposal #{row.id} is {row.status} already")


def _decide(session: Session, row: ThresholdProposal, user: User, status: str, note: Any,
            version: int | None) -> None:
    row.status, row.decided_by, row.decided_by_name = status, user.id, user.display_name
    row.decided_at, row.result_version = utcnow(), version
    row.decision_note = _text(note, "note") or None
    session.add(row)
    session.flush()



def of_patient(session: Session, patient_id: str) -> list[ThresholdProposal]:
    """Return the proposals about the patient's latest episode, newest first."""
    episode = current_episode(session, patient_id)
    query = select(ThresholdProposal).where(ThresholdProposal.patient_id == patient_id)
    if episode is not None:
        query = query.where(ThresholdProposal.episode_id == episode.id)
    return list(session.exec(query.order_by(col(ThresholdProposal.id).desc())))


def visible_to(session: Session, user: User, status: str | None = None,
               decidable: bool = False) -> list[ThresholdProposal]:
    """Return proposals of patients `user` sees (only those they may decide, if asked)."""
    query = select(ThresholdProposal).where(col(ThresholdProposal.patient_id).in_(
        visible_patient_ids(user).scalar_subquery()))
    if status:
        query = query.where(ThresholdProposal.status == status)
    rows = list(session.exec(query.order_by(col(ThresholdProposal.id).desc())))
    if decidable:
        allowed = {pid for pid in {r.patient_id for r in rows}
                   if may(session, user, "set_thresholds", pid)}
        rows = [r for r in rows if r.patient_id in allowed and r.status == "pending"]
    return rows


def view(session: Session, user: User, row: ThresholdProposal) -> dict[str, Any]:
    """Return a proposal as the API shows it, with the limits it was based on and now."""
    base = care_plan.version_of(session, row.patient_id, row.base_version)
    current = care_plan.current_version(session, row.patient_id)
    before = _limits(base, row.measurement)
    now = _limits(current, row.measurement)
    return {
        "id": row.id, "patient_id": row.patient_id, "measurement": row.measurement,
        "proposed": row.proposed, "reason": row.reason, "status": row.status,
        "base_version": row.base_version, "base_limits": before,
        "current_version": current.version if current else None, "current_limits": now,
        "changed_since_proposal": before != now,
        "proposed_by": {"id": row.proposed_by, "name": row.proposed_by_name,
                        "organization": row.proposed_by_org},
        "proposed_at": events.instant(row.proposed_at),
        "decided_by": ({"id": row.decided_by, "name": row.decided_by_name}
                       if row.decided_by else None),
        "decided_at": events.instant(row.decided_at), "decision_note": row.decision_note,
        "result_version": row.result_version,
        "may_decide": row.status == "pending" and may(session, user, "set_thresholds",
                                                      row.patient_id),
        "may_withdraw": row.status == "pending" and row.proposed_by == user.id,
    }


def _limits(version: Any, code: str) -> dict[str, float | None] | None:
    limits = care_plan.content_of(version).thresholds.get(code) if version else None
    return limits.model_dump() if limits else None


def proposal_event(session: Session, row: ThresholdProposal) -> dict[str, Any]:
    """Return the live event telling the care team (not the patient) of a proposal."""
    orgs = team_organizations(session, [row.patient_id]).get(row.patient_id, [])
    rooms = [room for room in events.rooms_for(row.patient_id, orgs) if room.startswith("org:")]
    data = {"id": row.id, "patient_id": row.patient_id, "measurement": row.measurement,
            "status": row.status, "proposed_by_org": row.proposed_by_org,
            "result_version": row.result_version}
    return {"type": "proposal", "rooms": rooms, "data": data}


def patients_of(rows: Iterable[ThresholdProposal]) -> list[str]:
    """Return the distinct patient ids of proposals (for audit notes)."""
    return list(dict.fromkeys(row.patient_id for row in rows))


def _text(value: Any, name: str, *, required: bool = False) -> str:
    return checked_text(value, name, CarePlanError, required=required)
