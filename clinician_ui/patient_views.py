"""The patient's own pages: fill in the CAT and the COPD symptom diary (Danish and English)."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_login import login_required
from telekol.clinician_ui.blueprint import bp
from telekol.fhir.questionnaire import QUESTIONNAIRES, QuestionnaireDef, cat_impact
from telekol.server.ingest.self_report import InvalidAnswers, QuestionnaireService, Submission
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db, services
from telekol.server.web.context import publish as push_live

_BOOLEANS = {"yes": True, "no": False}


@bp.route("/questionnaire/<kind>", methods=["GET", "POST"])
@login_required
def questionnaire(kind: str):  # type: ignore[no-untyped-def]
    """Show a questionnaire to the signed-in patient and store the answers on submit."""
    user = the_user()
    definition = QUESTIONNAIRES.get(kind)
    if user.role != "patient" or not user.patient_id or definition is None:
        abort(404)  # as if absent: only patients have questionnaires
    if request.method == "GET":
        return _page(definition)
    service = QuestionnaireService(services().engine)
    try:  # in the request's own session: its one connection (server/web/context.py)
        submission = service.submit(user.patient_id, kind, _form_answers(definition), user.id,
                                    session=db())
    except InvalidAnswers:
        return _page(definition, invalid=True), 400
    note(user.patient_id, "create", f"Observation/{submission.observation_id}",
         detail=f"questionnaire {kind}")
    push_live(submission.events)
    return _page(definition, submission=submission)


def _page(definition: QuestionnaireDef, *, invalid: bool = False,
          submission: Submission | None = None) -> str:
    impact = cat_impact(submission.total)[1] if submission and definition.kind == "cat" else None
    return render_template("questionnaire.html", definition=definition, invalid=invalid,
                           chosen=request.form, submission=submission, impact=impact,
                           others=[q for q in QUESTIONNAIRES.values() if q is not definition])


def _form_answers(definition: QuestionnaireDef) -> dict[str, Any]:
    # Unanswered items stay absent and anything unexpected stays a string: the shared
    # parser then rejects it exactly as it would from a device.
    answers: dict[str, Any] = {}
    for item in definition.items:
        raw = request.form.get(item.link_id)
        if raw is None:
            continue
        if definition.answer_type == "boolean":
            answers[item.link_id] = _BOOLEANS.get(raw, raw)
        else:
            answers[item.link_id] = int(raw) if raw in ("0", "1", "2", "3", "4", "5") else raw
    return answers
