"""The shared care plan page (read, edit, propose, decide) and the threshold proposals page.

Plain HTML forms: every POST redirects on success and shows the page again with the
errors (and what was typed) otherwise. Who may do what is decided by the service layer
(server/care/plan.py, server/care/proposals.py, via access.may); the page only hides forms
that would be refused.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlmodel import col, select
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.care_plan_words import (
    PARAMETER_DEFAULTS,
    content_fields,
    content_from_form,
    number,
    page_helpers,
    plan_words,
)
from telekol.clinician_ui.plan_notes import parameter_label, parameter_unit, version_notes
from telekol.server.care import plan as care_plan
from telekol.server.care import proposals
from telekol.server.care.access import may, visible_patient
from telekol.server.care.episodes import current_episode
from telekol.server.care.plan import CarePlanError, NotAllowed, StaleVersion
from telekol.server.care.plan_content import (
    LIMITS,
    MEASUREMENT_CODES,
    QUESTIONNAIRE_CODES,
    THRESHOLD_CODES,
    InvalidCarePlan,
    as_json,
)
from telekol.server.models import Organization, Patient, ThresholdProposal, User
from telekol.server.web.api.care_plan import commit_change, decide_proposal, plan_resource
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db


def _patient_or_404(patient_id: str) -> tuple[User, Patient]:
    user = the_user()
    patient = visible_patient(db(), user, patient_id)
    if patient is None:
        abort(404)  # as if absent
    return user, patient


@bp.get("/patients/<patient_id>/plan", endpoint="care_plan")
@login_required
def care_plan_page(patient_id: str):  # type: ignore[no-untyped-def]
    """Show the patient's care plan (or an older version) to the care team."""
    user, patient = _patient_or_404(patient_id)
    wanted = request.args.get("version", "")
    shown = None
    if wanted.isdigit():
        shown = care_plan.version_of(db(), patient_id, int(wanted))
        if shown is None:
            abort(404)
    note(patient_id, "read", plan_resource(patient_id) + (f"/_history/{wanted}" if shown else ""))
    return _render(user, patient, shown=shown)


@bp.post("/patients/<patient_id>/plan")
@login_required
def care_plan_save(patient_id: str):  # type: ignore[no-untyped-def]
    """Save the edit form as a new version of the plan."""
    user, patient = _patient_or_404(patient_id)
    note(patient_id, "update", plan_resource(patient_id))
    current = care_plan.current_version(db(), patient_id)
    sections = _editable(user, patient_id)
    data = content_from_form(request.form, as_json(care_plan.content_of(current)), sections)
    try:
        base = int(request.form.get("base_version", ""))
    except ValueError:
        base = -1
    try:
        row = commit_change(patient_id, lambda: care_plan.save(db(), user, patient_id, base,
                                                               data))
    except (CarePlanError, InvalidCarePlan) as exc:
        return _render(user, patient, edit_errors=_messages(exc),
                       edit_fields=request.form.to_dict()), _status(exc)
    flash(_("Saved as version %(n)s of the care plan.", n=row.version), "ok")
    return redirect(url_for("ui.care_plan", patient_id=patient_id))


@bp.post("/patients/<patient_id>/plan/proposals")
@login_required
def care_plan_propose(patient_id: str):  # type: ignore[no-untyped-def]
    """Propose new limits for one measurement from the care plan page."""
    user, patient = _patient_or_404(patient_id)
    note(patient_id, "create", f"ThresholdProposal?patient={patient_id}")
    form = request.form
    code = form.get("measurement", "")
    limits = {name: number(form.get(name, "")) for name in LIMITS}
    base = form.get("base_version", "")
    try:
        row = commit_change(patient_id, lambda: proposals.propose(
            db(), user, patient_id, code, limits, form.get("reason", ""),
            int(base) if base.isdigit() else None))
    except (CarePlanError, InvalidCarePlan) as exc:
        return _render(user, patient, propose_errors=_messages(exc),
                       propose_fields=form.to_dict()), _status(exc)
    flash(_("Your proposal #%(n)s was sent to the treatment-responsible doctor.", n=row.id),
          "ok")
    return redirect(url_for("ui.care_plan", patient_id=patient_id) + "#proposals")


@bp.post("/proposals/<int:proposal_id>/<any(approve, reject, withdraw):action>")
@login_required
def proposal_decide(proposal_id: int, action: str):  # type: ignore[no-untyped-def]
    """Approve, reject or withdraw a proposal, then go back where the form was."""
    user = the_user()
    row = proposals.find(db(), user, proposal_id)
    if row is None:
        abort(404)
    note(row.patient_id, "update", f"ThresholdProposal/{proposal_id}")
    try:
        commit_change(row.patient_id, lambda: decide_proposal(
            user, row, action, request.form.get("note", "")))
    except (CarePlanError, InvalidCarePlan) as exc:
        flash(_("Proposal #%(n)s: %(error)s", n=proposal_id, error=" ".join(_messages(exc))),
              "error")
    else:
        done = {"approve": _("Proposal #%(n)s approved: the care plan has a new version."),
                "reject": _("Proposal #%(n)s rejected."),
                "withdraw": _("Proposal #%(n)s withdrawn.")}[action]
        flash(done % {"n": proposal_id}, "ok")
    target = request.form.get("next", "")
    if not (target.startswith("/") and not target.startswith("//") and "\\" not in target):
        target = url_for("ui.care_plan", patient_id=row.patient_id) + "#proposals"
    return redirect(target)


@bp.get("/proposals", endpoint="proposals")
@login_required
def proposals_page():  # type: ignore[no-untyped-def]
    """Show proposals awaiting the user's decision and those the user's organisation made."""
    user = the_user()
    if user.role in ("patient", "admin") or not user.organization_id:
        abort(404)
    session = db()
    waiting = proposals.visible_to(session, user, "pending", decidable=True)
    ours = [row for row in proposals.visible_to(session, user)
            if row.proposed_by_org == user.organization_id]
    shown = waiting + [row for row in ours if row not in waiting]
    note(proposals.patients_of(shown), "search", "ThresholdProposal")
    names = {p.id: p.display for p in session.exec(select(Patient).where(
        col(Patient.id).in_(proposals.patients_of(shown))))}
    organization = session.get(Organization, user.organization_id)
    return render_template("proposals.html", organization=organization,
                           waiting=[_proposal(user, row, names) for row in waiting],
                           ours=[_proposal(user, row, names) for row in ours],
                           **page_helpers())


def _proposal(user: User, row: ThresholdProposal, names: dict[str, str]) -> dict[str, Any]:
    return {**proposals.view(db(), user, row), "patient_name": names.get(row.patient_id, ""),
            "org_name": _org_name(row.proposed_by_org)}


def _org_name(org_id: str | None) -> str:
    org = db().get(Organization, org_id) if org_id else None
    return org.name if org else (org_id or "")


def _editable(user: User, patient_id: str) -> set[str]:
    sections = set()
    if may(db(), user, "set_thresholds", patient_id):
        sections |= {"thresholds", "relative"}
    if may(db(), user, "edit_care_plan", patient_id):
        sections |= {"schedules", "self_care", "goals", "notes"}
    return sections


def _render(user: User, patient: Patient, *, shown: Any = None, **forms: Any) -> str:
    session = db()
    current = care_plan.current_version(session, patient.id)
    version = shown or current
    content = care_plan.content_of(version)
    sections = _editable(user, patient.id) if current_episode(session, patient.id) else set()
    organization = session.get(Organization, user.organization_id) if user.organization_id \
        else None
    rows = proposals.of_patient(session, patient.id)
    history = care_plan.history(session, patient.id)
    return render_template(
        "care_plan.html", patient=patient, organization=organization, version=version,
        current=current, old=shown is not None and shown is not current,
        words=plan_words(content), history=history,
        notes=version_notes(history, {row.result_version: (row.id, row.proposed_by_name)
                                      for row in rows if row.result_version is not None}),
        org_names={o.id: o.name for o in session.exec(select(Organization))},
        sections=sections, may_propose=bool(current) and may(
            session, user, "propose_thresholds", patient.id) and "thresholds" not in sections,
        edit_fields=forms.get("edit_fields") or content_fields(as_json(
            care_plan.content_of(current))),
        edit_errors=forms.get("edit_errors", []),
        propose_fields=forms.get("propose_fields") or {},
        propose_errors=forms.get("propose_errors", []),
        proposals=[{**proposals.view(session, user, row), "org_name": _org_name(
            row.proposed_by_org)} for row in rows],
        threshold_codes=THRESHOLD_CODES, measurement_codes=MEASUREMENT_CODES,
        questionnaire_codes=QUESTIONNAIRE_CODES, parameters=PARAMETER_DEFAULTS,
        parameter_label=parameter_label, parameter_unit=parameter_unit,
        **page_helpers(),
        thresholds_json={code: limits.model_dump() for code, limits in care_plan.content_of(
            current).thresholds.items()})


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, InvalidCarePlan):
        return exc.errors
    if isinstance(exc, StaleVersion):
        return [_("Someone else changed the care plan meanwhile (it is now version %(n)s). "
                  "Nothing was saved: look at the current plan and try again.",
                  n=exc.current.version if exc.current else 0)]
    if isinstance(exc, NotAllowed):
        return [_("You may not make this change.") + " " + str(exc)]
    if isinstance(exc, proposals.WrongState):
        return [_("The proposal has already been decided or withdrawn.")]
    return [str(exc)]


def _status(exc: Exception) -> int:
    if isinstance(exc, NotAllowed):
        return 403
    if isinstance(exc, (StaleVersion, proposals.WrongState)):
        return 409
    return 400

