"""The JSON door for episodes: responsibility, care team, consent, pauses and handovers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from sqlmodel import Session, col, select
from telekol.server.care import episodes, pauses
from telekol.server.care import handovers as handing_over
from telekol.server.care.access import may, visible_patient
from telekol.server.events import instant
from telekol.server.models import (
    CareTeamMember,
    Consent,
    Episode,
    Handover,
    MonitoringPause,
    Organization,
    Patient,
    User,
)
from telekol.server.web.auditing import note
from telekol.server.web.auth import clock, the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live

bp = Blueprint("episode_api", __name__, url_prefix="/api")

STATUS = {episodes.NotFound: 404, episodes.NotPermitted: 403, episodes.Conflict: 409}


def error(message: str, status: int) -> tuple[Response, int]:
    """Return a JSON error body with `status`."""
    return jsonify(error=message), status


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise episodes.EpisodeError("the body must be a JSON object")
    return body


def _change(patient_id: str | None, action: str, resource: str,
            work: Callable[[Session, User], Any], render: Callable[[Any], dict[str, Any]],
            change: str) -> Any:
    """Run a change through the service, commit, tell the care team live, answer JSON."""
    if patient_id is not None:
        note(patient_id, action, resource)
    session = db()
    try:
        result = work(session, the_user())
    except episodes.EpisodeError as refused:
        session.rollback()
        return error(str(refused), STATUS.get(type(refused), 400))
    body = render(result)
    also = body.get("to", {}).get("id")  # a handover's receiver
    event = team_event(session, body["patient"], change, [also] if also else [])
    session.commit()
    publish(event)
    return jsonify(body), 201 if action == "create" else 200


def team_event(session: Session, patient_id: str, change: str,
               also: list[str]) -> dict[str, Any] | None:
    """Return the live event telling the care team (and `also` orgs) of a change."""
    patient = session.get(Patient, patient_id)
    return episodes.team_event(session, patient, change, also) if patient else None


def publish(event: dict[str, Any] | None) -> None:
    """Send a live event through the broker to every web process."""
    if event is not None:
        push_live([event])


@bp.get("/patients/<patient_id>/episode")
@login_required
def episode(patient_id: str):  # type: ignore[no-untyped-def]
    """Return the patient's episode, care team, consents in force, pause and handovers."""
    note(patient_id, "read", f"EpisodeOfCare?patient={patient_id}")
    session, user = db(), the_user()
    patient = visible_patient(session, user, patient_id)
    if patient is None:
        return error(f"patient {patient_id} is not known", 404)
    return jsonify(summary(session, user, patient_id))


def summary(session: Session, user: User, patient_id: str) -> dict[str, Any]:
    """Return what the care-team page and API show about a patient's episode."""
    current = episodes.latest_episode(session, patient_id)
    orgs = {o.id: o for o in session.exec(select(Organization))}
    members = session.exec(select(CareTeamMember).where(
        CareTeamMember.patient_id == patient_id).order_by(col(CareTeamMember.organization_id)))
    pause = pauses.active_pause(session, patient_id, clock())
    handovers = handing_over.pending_handovers(session, current.id) if current else []

    def org(org_id: str) -> dict[str, Any]:
        return {"id": org_id, "name": orgs[org_id].name, "kind": orgs[org_id].kind}

    return {
        "patient": patient_id,
        "episode": current and {
            "id": current.id, "status": current.status, "condition": current.condition,
            "started_at": instant(current.started_at), "ended_at": instant(current.ended_at),
            "custodian": org(current.custodian_org_id),
            "monitoring": org(current.monitoring_org_id),
            "treatment": org(current.treatment_org_id)},
        "care_team": [{"organization": org(m.organization_id), "role": m.role,
                       "sees_data": m.sees_data} for m in members],
        "consents": {scope: consent_json(episodes.consent_in_force(session, patient_id, scope))
                     for scope in episodes.CONSENT_SCOPES},
        "pause": pause_json(pause) if pause else None,
        "handovers": [handover_json(v) for v in handing_over.handover_views(session, handovers)],
        "may": {action: may(session, user, action, patient_id)
                for action in ("consent", "pause", "hand_over")},
    }


def consent_json(row: Consent | None) -> dict[str, Any] | None:
    """Render one consent decision."""
    if row is None:
        return None
    return {"id": row.id, "patient": row.patient_id, "scope": row.scope, "granted": row.granted,
            "method": row.method, "note": row.note, "recorded_by": row.recorded_by_name or None,
            "recorded_at": instant(row.recorded_at)}


def pause_json(row: MonitoringPause) -> dict[str, Any]:
    """Render one pause with its status now."""
    return {"id": row.id, "patient": row.patient_id, "starts_at": instant(row.starts_at),
            "ends_at": instant(row.ends_at), "reason": row.reason,
            "status": pauses.status(row, clock()), "cancelled_at": instant(row.cancelled_at),
            "created_at": instant(row.created_at)}


def handover_json(view: handing_over.HandoverView) -> dict[str, Any]:
    """Render a handover; the patient part is what a receiver may see before accepting."""
    row = view.handover
    return {"id": row.id, "patient": view.patient_id, "episode": row.episode_id,
            "patient_name": view.patient_name,
            "birth_date": view.birth_date.isoformat() if view.birth_date else None,
            "responsibility": row.responsibility,
            "from": {"id": row.from_org_id, "name": view.from_name},
            "to": {"id": row.to_org_id, "name": view.to_name},
            "status": row.status, "reason": row.reason,
            "requested_by": view.requested_by_name, "requested_at": instant(row.requested_at),
            "decided_by": view.decided_by_name, "decided_at": instant(row.decided_at),
            "decision_note": row.decision_note}


@bp.get("/patients/<patient_id>/consents")
@login_required
def consents(patient_id: str):  # type: ignore[no-untyped-def]
    """List the patient's consent decisions, newest first (the first per scope is in force)."""
    note(patient_id, "read", f"Consent?patient={patient_id}")
    if visible_patient(db(), the_user(), patient_id) is None:
        return error(f"patient {patient_id} is not known", 404)
    return jsonify([consent_json(c) for c in episodes.consent_history(db(), patient_id)])


@bp.post("/patients/<patient_id>/consents")
@login_required
def record_consent(patient_id: str):  # type: ignore[no-untyped-def]
    """Record a consent decision: JSON {scope, granted, method, note}."""
    def work(session: Session, user: User) -> Consent:
        body = _body()
        return episodes.consent_by(session, user, patient_id, body.get("scope"),
                                   body.get("granted"), method=body.get("method", "written"),
                                   note=body.get("note", ""), at=clock())
    return _change(patient_id, "create", f"Consent?patient={patient_id}", work,
                   lambda row: consent_json(row) or {}, "consent")


@bp.get("/patients/<patient_id>/pauses")
@login_required
def list_pauses(patient_id: str):  # type: ignore[no-untyped-def]
    """List the patient's pauses of monitoring, the latest start first."""
    note(patient_id, "read", f"MonitoringPause?patient={patient_id}")
    if visible_patient(db(), the_user(), patient_id) is None:
        return error(f"patient {patient_id} is not known", 404)
    return jsonify([pause_json(p) for p in pauses.pauses_of(db(), patient_id)])


@bp.post("/patients/<patient_id>/pauses")
@login_required
def create_pause(patient_id: str):  # type: ignore[no-untyped-def]
    """Pause monitoring: JSON {starts_at, ends_at (RFC 3339 with offset), reason}."""
    def work(session: Session, user: User) -> MonitoringPause:
        body = _body()
        return pauses.start_pause(session, user, patient_id,
                                  pauses.parse_instant(body.get("starts_at"), "starts_at"),
                                  pauses.parse_instant(body.get("ends_at"), "ends_at"),
                                  body.get("reason"), at=clock())
    return _change(patient_id, "create", f"MonitoringPause?patient={patient_id}", work,
                   pause_json, "pause")


@bp.post("/pauses/<int:pause_id>/cancel")
@login_required
def cancel_pause(pause_id: int):  # type: ignore[no-untyped-def]
    """Cancel a planned or running pause."""
    row = db().get(MonitoringPause, pause_id)
    if row is not None:
        note(row.patient_id, "update", f"MonitoringPause/{pause_id}")
    return _change(None, "update", f"MonitoringPause/{pause_id}",
                   lambda session, user: pauses.cancel_pause(session, user, pause_id, clock()),
                   pause_json, "pause_cancelled")


@bp.get("/handovers")
@login_required
def handovers():  # type: ignore[no-untyped-def]
    """List handovers to (`direction=incoming`, default) or from the user's organisation;
    `status` = pending (default), accepted, rejected, withdrawn or all."""
    direction = request.args.get("direction", "incoming")
    try:
        rows = handing_over.handovers_of(db(), the_user(), direction,
                                     request.args.get("status", "pending"))
    except episodes.EpisodeError as invalid:
        return error(str(invalid), 400)
    views = handing_over.handover_views(db(), rows)
    # The receiver may not see these patients yet: it is shown name and birth date only.
    note([v.patient_id for v in views], "search", f"Handover?direction={direction}",
         detail="patient name and birth date shown for a handover")
    return jsonify([handover_json(v) for v in views])


@bp.get("/handovers/count")
@login_required
def handover_count():  # type: ignore[no-untyped-def]
    """Return {"incoming": n}: pending handovers waiting for the user's organisation (for
    the menu badge; no patient data, so nothing to audit)."""
    return jsonify(incoming=len(handing_over.handovers_of(db(), the_user(), "incoming")))


@bp.post("/patients/<patient_id>/handovers")
@login_required
def request_handover(patient_id: str):  # type: ignore[no-untyped-def]
    """Ask to hand over a responsibility: JSON {responsibility, to_organization, reason}."""
    def work(session: Session, user: User) -> handing_over.HandoverView:
        body = _body()
        row = handing_over.request_handover(session, user, patient_id, body.get("responsibility"),
                                        body.get("to_organization"), body.get("reason"),
                                        at=clock())
        return handing_over.handover_views(session, [row])[0]
    return _change(patient_id, "create", f"Handover?patient={patient_id}", work,
                   handover_json, "handover_requested")


def _decide(handover_id: int, decide: Callable[[Session, User, Any], Any], change: str) -> Any:
    session = db()
    row = session.get(Handover, handover_id)
    if row is not None:
        found = session.get(Episode, row.episode_id)
        if found is not None:
            note(found.patient_id, "update", f"Handover/{handover_id}")

    def work(session: Session, user: User) -> handing_over.HandoverView:
        body = request.get_json(silent=True) or {}
        text = body.get("note", "") if isinstance(body, dict) else None
        return handing_over.handover_views(session, [decide(session, user, text)])[0]
    return _change(None, "update", f"Handover/{handover_id}", work, handover_json, change)


@bp.post("/handovers/<int:handover_id>/accept")
@login_required
def accept_handover(handover_id: int):  # type: ignore[no-untyped-def]
    """Accept a handover (JSON {note} optional): the responsibility moves at once."""
    return _decide(handover_id, lambda s, u, text: handing_over.decide_handover(
        s, u, handover_id, True, text, clock()), "handover_accepted")


@bp.post("/handovers/<int:handover_id>/reject")
@login_required
def reject_handover(handover_id: int):  # type: ignore[no-untyped-def]
    """Reject a handover (JSON {note} optional)."""
    return _decide(handover_id, lambda s, u, text: handing_over.decide_handover(
        s, u, handover_id, False, text, clock()), "handover_rejected")


@bp.post("/handovers/<int:handover_id>/withdraw")
@login_required
def withdraw_handover(handover_id: int):  # type: ignore[no-untyped-def]
    """Withdraw a pending handover the user's organisation asked for."""
    return _decide(handover_id, lambda s, u, text: handing_over.withdraw_handover(
        s, u, handover_id, text, clock()), "handover_withdrawn")
