"""The care-team page (responsibility, team, consent, pauses, handovers) and the handover list.

Plain HTML forms with the CSRF token; each POST calls the same service as /api
(server/care/episodes.py, server/care/pauses.py), redirects after success and shows the page again
with the reason after a refusal. Buttons appear only when `may` allows; the service checks
anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlmodel import Session, col, select
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.patient_page_views import patient_header
from telekol.server.care import episodes, pauses
from telekol.server.care import handovers as handing_over
from telekol.server.care.access import CLINICIANS, may, visible_patient
from telekol.server.models import (
    CareTeamMember,
    Episode,
    Handover,
    MonitoringPause,
    Organization,
    User,
)
from telekol.server.web.api.episodes import STATUS, publish, team_event
from telekol.server.web.auditing import note
from telekol.server.web.auth import clock, the_user
from telekol.server.web.context import db

LOCAL = ZoneInfo("Europe/Copenhagen")


def local_time(moment: datetime | None) -> str:
    """Return an instant as Copenhagen wall-clock time, e.g. 25.11.2026 08:30."""
    return moment.astimezone(LOCAL).strftime("%d.%m.%Y %H:%M") if moment else ""


@bp.get("/patients/<patient_id>/team")
@login_required
def care_team(patient_id: str):  # type: ignore[no-untyped-def]
    """Show who is responsible for what, the care team, consent, pauses and handovers."""
    return _page(patient_id)


def _page(patient_id: str, error: str | None = None, status: int = 200) -> Any:
    session, user = db(), the_user()
    note(patient_id, "read", f"CareTeam/{patient_id}")
    found = visible_patient(session, user, patient_id) if user.role != "patient" else None
    if found is None:
        abort(404)  # as if absent
    episode = episodes.latest_episode(session, patient_id)
    orgs = {o.id: o for o in session.exec(select(Organization).order_by(col(Organization.name)))}
    holds = [r for r in episodes.RESPONSIBILITIES
             if episode and episode.status != "finished"
             and getattr(episode, f"{r}_org_id") == user.organization_id]
    context = {
        **patient_header(found), "tab": "team", "episode": episode, "orgs": orgs,
        "organization": orgs.get(user.organization_id or ""),
        "members": session.exec(select(CareTeamMember).where(
            CareTeamMember.patient_id == patient_id)
            .order_by(col(CareTeamMember.organization_id))).all(),
        "consents": episodes.consent_history(session, patient_id),
        "in_force": {s: episodes.consent_in_force(session, patient_id, s)
                     for s in episodes.CONSENT_SCOPES},
        "pauses": [(p, pauses.status(p, clock())) for p in pauses.pauses_of(session, patient_id)],
        "handovers": handing_over.handover_views(
            session, handing_over.pending_handovers(session, episode.id) if episode else []),
        "can": {a: may(session, user, a, patient_id) for a in ("consent", "pause", "hand_over")},
        "holds": holds, "clinician": user.role in CLINICIANS, "user": user,
        "error": error, "form": request.form if error else {}, "local_time": local_time,
    }
    return render_template("care_team.html", **context), status


def _act(patient_id: str | None, work: Callable[[Session, User], Any], done: Any,
         change: str, back: Callable[[Any], str], on_error: Callable[[str, int], Any]) -> Any:
    """Run a form's change through the service; redirect on success, explain a refusal."""
    session = db()
    try:
        result = work(session, the_user())
    except episodes.NotFound:
        session.rollback()
        abort(404)
    except episodes.EpisodeError as refused:
        session.rollback()
        return on_error(_("Not saved: %(reason)s", reason=str(refused)),
                        STATUS.get(type(refused), 400))
    patient = patient_id or result.patient_id
    also = [result.handover.to_org_id] if isinstance(result, handing_over.HandoverView) else []
    event = team_event(session, patient, change, also)
    session.commit()
    publish(event)
    flash(str(done), "ok")
    return redirect(back(result))


def _team_action(patient_id: str, work: Callable[[Session, User], Any], done: str,
                 change: str) -> Any:
    return _act(patient_id, work, done, change,
                lambda _result: url_for("ui.care_team", patient_id=patient_id),
                lambda error, status: _page(patient_id, error, status))


@bp.post("/patients/<patient_id>/team/consent")
@login_required
def care_team_consent(patient_id: str):  # type: ignore[no-untyped-def]
    """Record a consent decision from the form."""
    note(patient_id, "create", f"Consent?patient={patient_id}")
    form = request.form
    granted = {"true": True, "false": False}.get(form.get("granted", ""))
    return _team_action(patient_id, lambda session, user: episodes.consent_by(
        session, user, patient_id, form.get("scope", ""), granted,
        method=form.get("method", ""), note=form.get("note", ""), at=clock()),
        _("Consent recorded."), "consent")


@bp.post("/patients/<patient_id>/team/pauses")
@login_required
def care_team_pause(patient_id: str):  # type: ignore[no-untyped-def]
    """Pause monitoring from the form (local date and time, Europe/Copenhagen)."""
    note(patient_id, "create", f"MonitoringPause?patient={patient_id}")

    def work(session: Session, user: User) -> Any:
        starts = _local_input(request.form.get("starts_at", ""), _("Start"))
        ends = _local_input(request.form.get("ends_at", ""), _("End"))
        return pauses.start_pause(session, user, patient_id, starts, ends,
                                  request.form.get("reason", ""), at=clock())
    return _team_action(patient_id, work, _("Monitoring paused."), "pause")


@bp.post("/patients/<patient_id>/team/pauses/<int:pause_id>/cancel")
@login_required
def care_team_cancel_pause(patient_id: str, pause_id: int):  # type: ignore[no-untyped-def]
    """Cancel a pause from the form."""
    note(patient_id, "update", f"MonitoringPause/{pause_id}")

    def work(session: Session, user: User) -> Any:
        row = session.get(MonitoringPause, pause_id)
        if row is None or row.patient_id != patient_id:
            raise episodes.NotFound(f"pause {pause_id} is not known")
        return pauses.cancel_pause(session, user, pause_id, clock())
    return _team_action(patient_id, work, _("Pause cancelled."), "pause_cancelled")


@bp.post("/patients/<patient_id>/team/handovers")
@login_required
def care_team_handover(patient_id: str):  # type: ignore[no-untyped-def]
    """Ask another organisation to take over a responsibility, from the form."""
    note(patient_id, "create", f"Handover?patient={patient_id}")
    form = request.form

    def work(session: Session, user: User) -> Any:
        row = handing_over.request_handover(session, user, patient_id, form.get("responsibility"),
                                        form.get("to_organization"), form.get("reason"),
                                        at=clock())
        return handing_over.handover_views(session, [row])[0]
    return _team_action(patient_id, work, _("Handover requested. The receiving organisation "
                                            "must accept it."), "handover_requested")


@bp.get("/handovers")
@login_required
def handovers():  # type: ignore[no-untyped-def]
    """List the handovers waiting for the user's organisation, and those it asked for."""
    return _handover_list()


def _handover_list(error: str | None = None, status: int = 200) -> Any:
    session, user = db(), the_user()
    if user.role in ("patient", "admin"):
        abort(404)
    incoming, outgoing = (handing_over.handover_views(
        session, handing_over.handovers_of(session, user, direction))
        for direction in ("incoming", "outgoing"))
    # A receiver not yet on the care team sees only name and birth date, to accept.
    note([v.patient_id for v in [*incoming, *outgoing]], "search", "Handover?status=pending",
         detail="patient name and birth date shown for a handover")
    organization = session.get(Organization, user.organization_id or "")
    return render_template("handovers.html", incoming=incoming, outgoing=outgoing,
                           organization=organization, clinician=user.role in CLINICIANS,
                           error=error, local_time=local_time), status


DECISIONS = {"accept": (_l("Handover accepted. Your organisation is now responsible."),
                        "handover_accepted"),
             "reject": (_l("Handover rejected."), "handover_rejected"),
             "withdraw": (_l("Handover withdrawn."), "handover_withdrawn")}


@bp.post("/handovers/<int:handover_id>/<decision>")
@login_required
def decide_handover(handover_id: int, decision: str):  # type: ignore[no-untyped-def]
    """Accept, reject or withdraw a handover from a form; back to the list or the team."""
    if decision not in DECISIONS:
        abort(404)
    session = db()
    row = session.get(Handover, handover_id)
    episode = session.get(Episode, row.episode_id) if row else None
    if episode is not None:
        note(episode.patient_id, "update", f"Handover/{handover_id}")
    text = request.form.get("note", "")

    def work(session: Session, user: User) -> Any:
        if decision == "withdraw":
            found = handing_over.withdraw_handover(session, user, handover_id, text, clock())
        else:
            found = handing_over.decide_handover(session, user, handover_id, decision == "accept",
                                             text, clock())
        return handing_over.handover_views(session, [found])[0]

    def back(view: handing_over.HandoverView) -> str:
        if decision == "accept" or request.form.get("back") == "team":
            return url_for("ui.care_team", patient_id=view.patient_id)
        return url_for("ui.handovers")
    done, change = DECISIONS[decision]
    return _act(None, work, done, change, back, _handover_list)


def _local_input(raw: str, name: str) -> datetime:
    """Return a form's date and time (browser `datetime-local`) in Copenhagen as an instant."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise episodes.EpisodeError(_("%(name)s must be a date and time", name=name)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)
