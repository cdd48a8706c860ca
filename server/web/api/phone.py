"""The JSON door of the non-digital route: readings and answers a patient gave by telephone.

`POST /api/patients/<id>/readings` and `POST /api/patients/<id>/questionnaire-responses`
for clinicians on the care team (`may(..., "enter_data", ...)`). An `Idempotency-Key`
header (or `entry_id` in the body) makes a retry return the first entry (200) instead
of storing a second one (201).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required
from telekol.server.ingest import manual_entry, phone_entry
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db, publish

bp = Blueprint("phone_api", __name__, url_prefix="/api")

Enter = Callable[..., phone_entry.Entry]


@bp.post("/patients/<patient_id>/readings")
@login_required
def enter_reading(patient_id: str):  # type: ignore[no-untyped-def]
    """Store a reading the patient reported: {type, value, unit, taken_at, method, note}."""
    return _enter(patient_id, phone_entry.report_reading)


@bp.post("/patients/<patient_id>/questionnaire-responses")
@login_required
def enter_answers(patient_id: str):  # type: ignore[no-untyped-def]
    """Store questionnaire answers the patient gave: {questionnaire, answers, method, authored}."""
    return _enter(patient_id, phone_entry.report_answers)


def _enter(patient_id: str, enter: Enter) -> tuple[Response, int]:
    body = request.get_json(silent=True)
    key = request.headers.get("Idempotency-Key")
    if key is None and isinstance(body, dict) and isinstance(body.get("entry_id"), str):
        key = body["entry_id"]
    try:
        entry = enter(db(), the_user(), patient_id, body, key=key)
    except manual_entry.SubjectNotFound:
        return jsonify(error="patient not found"), 404
    except manual_entry.EntryRefused as refused:
        note(patient_id, "create", f"Observation?patient={patient_id}", detail="refused")
        return jsonify(error=str(refused)), 403
    except phone_entry.InvalidReport as invalid:
        note(patient_id, "create", f"Observation?patient={patient_id}", detail="invalid")
        return jsonify(error=str(invalid), errors=invalid.errors), 422
    except manual_entry.DuplicateEntry as duplicate:
        note(patient_id, "create", f"Observation?patient={patient_id}", detail="key reused")
        return jsonify(error=str(duplicate)), 409
    note_entry(patient_id, entry)
    publish(entry.events)
    return jsonify(entry_json(entry)), 201 if entry.created else 200


def note_entry(patient_id: str, entry: phone_entry.Entry) -> None:
    """Note the resources an entry created (or, for a repeated key, returned) for the audit."""
    detail = "" if entry.created else "repeated key: the first entry is returned"
    if entry.response_id:
        note(patient_id, "create", f"QuestionnaireResponse/{entry.response_id}", detail=detail)
    note(patient_id, "create", f"Observation/{entry.observation.id}", detail=detail)


def entry_json(entry: phone_entry.Entry) -> dict[str, Any]:
    """Return an entry as the JSON door answers it."""
    found: dict[str, Any] = {"created": entry.created, "kind": entry.kind,
                             "severity": entry.observation.severity,
                             "observation": entry.resource, "alerts": entry.alerts}
    if entry.response_id:
        found["questionnaire_response"] = entry.response_id
        found["score"] = entry.resource.get("valueInteger")
    return found


