"""The phone-entry page: a clinician enters a reading or questionnaire the patient gave by
telephone, on paper or in person (server/ingest/phone_entry.py), and sees its colour and alerts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.patient_page_views import patient_header
from telekol.clinician_ui.reading_words import label, local_time, unit
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.questionnaire import QUESTIONNAIRES, QuestionnaireDef, cat_impact
from telekol.server.alerts.rules.wording import num
from telekol.server.care.access import may, visible_patient
from telekol.server.db import utcnow
from telekol.server.ingest import manual_entry
from telekol.server.ingest import phone_entry as entries
from telekol.server.models import Patient
from telekol.server.web.api.alerts import with_words
from telekol.server.web.api.phone import note_entry
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db, publish
from telekol.server.web.words import LOCAL

METHODS = {"telephone": _l("By telephone"), "paper": _l("On paper"),
           "in-person": _l("In person")}
COLOURS = {"red": _l("red"), "yellow": _l("yellow"), "green": _l("green")}
_BOOLEANS = {"yes": True, "no": False}
Enter = Callable[..., entries.Entry]


@bp.get("/patients/<patient_id>/phone")
@login_required
def phone_entry(patient_id: str):  # type: ignore[no-untyped-def]
    """Show the two forms: a reported reading and a reported questionnaire."""
    found = _allowed(patient_id)
    note(patient_id, "read", f"Patient/{patient_id}")
    return _page(found)


@bp.post("/patients/<patient_id>/phone/reading")
@login_required
def phone_entry_reading(patient_id: str):  # type: ignore[no-untyped-def]
    """Store the reading form; show what was saved, its colour and any alert."""
    found = _allowed(patient_id)
    form = request.form
    body: dict[str, Any] = {"type": form.get("type", ""), "method": form.get("method", ""),
                            "value": _reading_value(form.get("type", ""), form.get("value", "")),
                            "taken_at": _instant(form.get("taken_at", "")),
                            "note": form.get("note", "")}
    return _submit(found, entries.report_reading, body, "reading")


@bp.post("/patients/<patient_id>/phone/questionnaire/<kind>")
@login_required
def phone_entry_answers(patient_id: str, kind: str):  # type: ignore[no-untyped-def]
    """Store the questionnaire form; show the score and any alert."""
    found = _allowed(patient_id)
    definition = QUESTIONNAIRES.get(kind)
    if definition is None:
        abort(404)
    body = {"questionnaire": kind, "answers": _answers(definition),
            "method": request.form.get("method", ""),
            "authored": _instant(request.form.get("authored", ""))}
    return _submit(found, entries.report_answers, body, "questionnaire")


@bp.get("/patients/<patient_id>/phone/reading")
@bp.get("/patients/<patient_id>/phone/questionnaire/<kind>")
@login_required
def phone_entry_again(patient_id: str, kind: str = "cat"):  # type: ignore[no-untyped-def]
    """Send a GET of a form's address (a language switch after saving) back to the page."""
    return redirect(url_for("ui.phone_entry", patient_id=patient_id))


def _allowed(patient_id: str) -> Patient:
    found = visible_patient(db(), the_user(), patient_id)
    if found is None:
        abort(404)  # as if absent
    if the_user().role == "patient" or not may(db(), the_user(), "enter_data", patient_id):
        abort(403)
    return found


def _submit(found: Patient, enter: Enter, body: dict[str, Any], form: str) -> Any:
    try:
        entry = enter(db(), the_user(), found.id, body, key=request.form.get("entry_id") or None)
    except entries.InvalidReport as invalid:
        return _page(found, errors=invalid.errors, form=form), 422
    except manual_entry.DuplicateEntry as duplicate:
        return _page(found, errors=[str(duplicate)], form=form), 409
    note_entry(found.id, entry)
    publish(entry.events)
    return _page(found, result=_result(entry), form=form)


def _page(found: Patient, *, result: dict[str, Any] | None = None,
          errors: list[str] | None = None, form: str | None = None) -> str:
    chosen = request.args.get("questionnaire") or request.view_args.get("kind")  # type: ignore[union-attr]
    definition = QUESTIONNAIRES.get(chosen or "cat", QUESTIONNAIRES["cat"])
    keep = errors is not None  # a refused form keeps its values and its key
    values = request.form if keep else {}
    return render_template(
        "phone_entry.html", **patient_header(found), tab="phone", result=result,
        errors=errors or [], failed=form, values=values, methods=METHODS,
        types=[(code, label(code), unit(code)) for code in MEASUREMENT_TYPES],
        definition=definition, questionnaires=list(QUESTIONNAIRES.values()),
        now=f"{utcnow().astimezone(LOCAL):%Y-%m-%dT%H:%M}",
        reading_key=values.get("entry_id") if keep and form == "reading" else uuid.uuid4().hex,
        answers_key=values.get("entry_id") if keep and form != "reading" else uuid.uuid4().hex)


def _result(entry: entries.Entry) -> dict[str, Any]:
    row = entry.observation
    severities = [a["severity"] for a in entry.alerts]
    if entry.kind == "reading":
        what = f"{label(row.type_code)} {_value_text(entry)}"
        colour = row.severity
    else:
        what = _score_text(entry.kind, int(row.value or 0))
        colour = "red" if "red" in severities else "yellow" if "yellow" in severities else None
    return {"what": what, "colour": colour, "colour_text": COLOURS.get(colour or ""),
            "alerts": [with_words(a) for a in entry.alerts], "created": entry.created,
            "kind": entry.kind,
            "score": None if entry.kind == "reading" else int(row.value or 0),
            "taken": local_time(row.effective)}


def _value_text(entry: entries.Entry) -> str:
    resource = entry.resource
    code = entry.observation.type_code
    if "component" in resource:
        parts = [num(code, c["valueQuantity"]["value"]) for c in resource["component"]]
        return f"{'/'.join(parts)} {unit(code)}"
    return f"{num(code, resource['valueQuantity']['value'])} {unit(code)}".strip()


def _score_text(kind: str, total: int) -> str:
    if kind == "cat":
        return _("CAT score %(total)s of 40 (%(impact)s)", total=total,
                 impact=_(cat_impact(total)[1]))
    return _("%(count)s of 4 symptoms worse than usual", count=total)


def _reading_value(kind: str, raw: str) -> Any:
    # The form sends text; numbers go to the shared parser as numbers, anything else
    # unchanged so it is refused with the gateway's own words. "142/88" is a blood pressure.
    text = raw.strip().replace(",", ".")
    if kind == "bp":
        systolic, _slash, diastolic = text.partition("/")
        return {"systolic": _number(systolic), "diastolic": _number(diastolic)}
    return _number(text)


def _number(text: str) -> Any:
    try:
        return float(text.strip())
    except ValueError:
        return text


def _instant(raw: str) -> str:
    # datetime-local gives the clinician's wall-clock time: read it as Danish time.
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw
    return moment.replace(tzinfo=LOCAL).isoformat(timespec="seconds")


def _answers(definition: QuestionnaireDef) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for item in definition.items:
        raw = request.form.get(item.link_id)
        if raw is None:
            continue  # unanswered: the shared parser names it
        if definition.answer_type == "boolean":
            answers[item.link_id] = _BOOLEANS.get(raw, raw)
        else:
            answers[item.link_id] = int(raw) if raw in ("0", "1", "2", "3", "4", "5") else raw
    return answers
