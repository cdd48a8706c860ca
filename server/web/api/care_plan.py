"""The shared care plan and threshold proposals on the JSON door (/api).

A patient the user may not see answers 404; one they see but may not change, 403; a
change made from an old version, 409 with the current one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from telekol.server.care import plan as care_plan
from telekol.server.care import proposals
from telekol.server.care.access import may, visible_patient
from telekol.server.care.episodes import latest_episode
from telekol.server.care.plan import CarePlanError, NotAllowed, StaleVersion
from telekol.server.care.plan_content import CarePlanContent, InvalidCarePlan, as_json
from telekol.server.models import CarePlanVersion, Patient, ThresholdProposal, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live

log = logging.getLogger("telekol.web")
bp = Blueprint("care_plan_api", __name__, url_prefix="/api")


def error(message: str, status: int, **extra: Any) -> tuple[Response, int]:
    """Return a JSON error body with `status`."""
    return jsonify(error=message, **extra), status


def plan_resource(patient_id: str) -> str:
    """Return the audit resource name of a patient's care plan."""
    episode = latest_episode(db(), patient_id)
    return f"CarePlan/{episode.id if episode else patient_id}"


def permissions(user: User, patient_id: str) -> dict[str, bool]:
    """Return what `user` may do with the patient's plan (the UI hides what is refused)."""
    session = db()
    return {name: may(session, user, action, patient_id) for name, action in (
        ("edit", "edit_care_plan"), ("set_thresholds", "set_thresholds"),
        ("propose", "propose_thresholds"))}


def plan_view(row: CarePlanVersion | None, patient_id: str) -> dict[str, Any]:
    """Return a version for the API; no plan yet is version 0 with empty content."""
    if row is not None:
        return care_plan.version_view(row)
    return {"patient_id": patient_id, "episode_id": None, "version": 0, "summary": "",
            "changed_at": None, "changed_by": None, "content": as_json(CarePlanContent())}


def publish(*made: dict[str, Any]) -> None:
    """Push care-plan events live after the commit."""
    push_live(list(made))


@bp.get("/patients/<patient_id>/care-plan")
@login_required
def read_plan(patient_id: str):  # type: ignore[no-untyped-def]
    """Return the current version of the patient's care plan, with what the user may do."""
    if visible_patient(db(), the_user(), patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "read", plan_resource(patient_id))
    row = care_plan.current_version(db(), patient_id)
    return jsonify({**plan_view(row, patient_id),
                    "permissions": permissions(the_user(), patient_id)})


@bp.put("/patients/<patient_id>/care-plan")
@login_required
def change_plan(patient_id: str):  # type: ignore[no-untyped-def]
    """Save a new version (JSON {"base_version": n, "content": {...}})."""
    if visible_patient(db(), the_user(), patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "update", plan_resource(patient_id))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("the body must be a JSON object with base_version and content", 400)
    return _write(patient_id, lambda: care_plan.save(
        db(), the_user(), patient_id, body.get("base_version"), body.get("content")),
        lambda row: (jsonify(care_plan.version_view(row)), 200))


@bp.get("/patients/<patient_id>/care-plan/versions")
@login_required
def list_versions(patient_id: str):  # type: ignore[no-untyped-def]
    """List the plan's versions (who, when, what changed), newest first."""
    if visible_patient(db(), the_user(), patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "read", f"{plan_resource(patient_id)}/_history")
    return jsonify([{k: v for k, v in care_plan.version_view(row).items() if k != "content"}
                    for row in care_plan.history(db(), patient_id)])


@bp.get("/patients/<patient_id>/care-plan/versions/<int:number>")
@login_required
def read_version(patient_id: str, number: int):  # type: ignore[no-untyped-def]
    """Return one version of the plan with its content."""
    if visible_patient(db(), the_user(), patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "read", f"{plan_resource(patient_id)}/_history/{number}")
    row = care_plan.version_of(db(), patient_id, number)
    if row is None:
        return error(f"the care plan has no version {number}", 404)
    return jsonify(care_plan.version_view(row))


@bp.get("/patients/<patient_id>/threshold-proposals")
@login_required
def patient_proposals(patient_id: str):  # type: ignore[no-untyped-def]
    """List the threshold proposals about the patient, newest first."""
    user = the_user()
    if visible_patient(db(), user, patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "search", f"ThresholdProposal?patient={patient_id}")
    return jsonify([proposals.view(db(), user, row)
                    for row in proposals.of_patient(db(), patient_id)])


@bp.post("/patients/<patient_id>/threshold-proposals")
@login_required
def make_proposal(patient_id: str):  # type: ignore[no-untyped-def]
    """Propose limits for one measurement (JSON {"measurement", "proposed", "reason",
    "base_version"?})."""
    user = the_user()
    if visible_patient(db(), user, patient_id) is None:
        return error("no such patient", 404)
    note(patient_id, "create", f"ThresholdProposal?patient={patient_id}")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("the body must be a JSON object with measurement, proposed and reason", 400)
    return _write(patient_id, lambda: proposals.propose(
        db(), user, patient_id, body.get("measurement"), body.get("proposed"),
        body.get("reason"), body.get("base_version")),
        lambda row: (jsonify(proposals.view(db(), user, row)), 201))


@bp.get("/threshold-proposals")
@login_required
def my_proposals():  # type: ignore[no-untyped-def]
    """List proposals of the user's patients (?status=, ?decidable=1: those they may decide)."""
    status = request.args.get("status") or None
    if status is not None and status not in proposals.STATUSES:
        return error(f"status must be one of {', '.join(proposals.STATUSES)}", 400)
    decidable = request.args.get("decidable") in ("1", "true")
    user = the_user()
    rows = proposals.visible_to(db(), user, status, decidable)
    note(proposals.patients_of(rows), "search", "ThresholdProposal")
    names = {p.id: p.display for p in _patients(proposals.patients_of(rows))}
    return jsonify([{**proposals.view(db(), user, row), "patient": {
        "id": row.patient_id, "display": names.get(row.patient_id, "")}} for row in rows])


@bp.get("/threshold-proposals/count")
@login_required
def count_decidable():  # type: ignore[no-untyped-def]
    """Return {"pending": n}: proposals awaiting the user's decision (the menu badge).

    A number that names no patient, so not audited; the list above is.
    """
    return jsonify(pending=len(proposals.visible_to(db(), the_user(), "pending", True)))


@bp.post("/threshold-proposals/<int:proposal_id>/<any(approve, reject, withdraw):action>")
@login_required
def decide(proposal_id: int, action: str):  # type: ignore[no-untyped-def]
    """Approve or reject a proposal (JSON {"note": ...}), or withdraw one's own."""
    user = the_user()
    row = proposals.find(db(), user, proposal_id)
    if row is None:
        return error(f"threshold proposal {proposal_id} is not known", 404)
    note(row.patient_id, "update", f"ThresholdProposal/{proposal_id}")
    body = request.get_json(silent=True) or {}
    text = body.get("note") if isinstance(body, dict) else None
    return _write(row.patient_id, lambda: decide_proposal(user, row, action, text),
                  lambda done: (jsonify(proposals.view(db(), user, done)), 200))


def decide_proposal(user: User, row: ThresholdProposal, action: str,
                    text: Any) -> ThresholdProposal:
    """Carry out approve, reject or withdraw on a proposal; return it."""
    if action == "approve":
        proposals.approve(db(), user, row, text)
    elif action == "reject":
        proposals.reject(db(), user, row, text)
    else:
        proposals.withdraw(db(), user, row)
    return row


def commit_change(patient_id: str, change: Callable[[], Any]) -> Any:
    """Run a service change, commit it and push its live events; errors propagate."""
    session = db()
    try:
        made = change()
        made_events = _events_of(made)
        session.commit()
    except IntegrityError:  # another change of the same version won the race
        session.rollback()
        raise StaleVersion(care_plan.current_version(session, patient_id)) from None
    except Exception:
        session.rollback()
        raise
    publish(*made_events)
    return made


def _events_of(made: Any) -> list[dict[str, Any]]:
    session = db()
    if isinstance(made, CarePlanVersion):
        return [care_plan.plan_event(session, made)]
    found = [proposals.proposal_event(session, made)]
    if made.status == "approved" and made.result_version:
        version = care_plan.version_of(session, made.patient_id, made.result_version)
        if version is not None:
            found.insert(0, care_plan.plan_event(session, version))
    return found


def _write(patient_id: str, change: Callable[[], Any],
           answer: Callable[[Any], tuple[Response, int]]) -> Any:
    try:
        return answer(commit_change(patient_id, change))
    except InvalidCarePlan as exc:
        return error(str(exc), 400, errors=exc.errors)
    except NotAllowed as exc:
        return error(str(exc), 403)
    except StaleVersion as exc:
        return error(str(exc), 409, current=plan_view(exc.current, patient_id))
    except proposals.WrongState as exc:
        return error(str(exc), 409)
    except CarePlanError as exc:
        return error(str(exc), 400)


def _patients(ids: list[str]) -> list[Patient]:
    return list(db().exec(select(Patient).where(col(Patient.id).in_(ids))))
