"""FHIR create at /fhir: POST /fhir/Observation for a reading a patient gave by telephone.

Writes need a bearer token: a browser cookie alone is never enough (no CSRF risk).
"""

from __future__ import annotations

import json

from flask import Response, request
from telekol.server.ingest import manual_entry
from telekol.server.web.auditing import note
from telekol.server.web.auth import bearer_token, the_user
from telekol.server.web.context import db
from telekol.server.web.context import publish as push_live
from telekol.server.web.fhir.http import (
    JSON_FORMATS,
    base_url,
    bp,
    fhir_auth,
    outcome_response,
    resource_response,
)

_ENTRY_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (manual_entry.EntryRefused, 403, "forbidden"),
    (manual_entry.SubjectNotFound, 404, "not-found"),
    (manual_entry.DuplicateEntry, 409, "duplicate"),
    (manual_entry.InvalidEntry, 422, "processing"),
)


@bp.post("/Observation")
@fhir_auth
def create_observation() -> Response:
    """Store a reported reading; with If-None-Exist, return the match instead (conditional)."""
    if bearer_token(request) is None:
        return outcome_response(403, "security", "writes need Authorization: Bearer <token>")
    if request.mimetype not in JSON_FORMATS:
        return outcome_response(415, "not-supported",
                                f"send the Observation as application/fhir+json, not "
                                f"{request.mimetype or 'no Content-Type'}")
    try:
        criteria = request.headers.get("If-None-Exist")
        if criteria:
            matches = manual_entry.existing_matches(db(), the_user(), criteria)
            if len(matches) > 1:
                return outcome_response(412, "multiple-matches",
                                        f"If-None-Exist {criteria!r} matches several Observations")
            if matches:
                note(matches[0].patient_id, "read", f"Observation/{matches[0].id}")
                return resource_response(json.loads(matches[0].resource))
        body = request.get_json(force=True, silent=True)
        stored, announced = manual_entry.enter_reading(db(), the_user(), body)
    except tuple(kind for kind, _, _ in _ENTRY_ERRORS) as error:
        status, code = next((s, c) for k, s, c in _ENTRY_ERRORS if isinstance(error, k))
        return outcome_response(status, code, str(error))
    note(stored["subject"]["reference"].rpartition("/")[2], "create",
         f"Observation/{stored['id']}")
    push_live(announced)
    location = f"{base_url()}/Observation/{stored['id']}/_history/1"
    return resource_response(stored, 201, {"Location": location})
