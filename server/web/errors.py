"""FHIR JSON responses and OperationOutcome errors, for the core as well as the /fhir door.

The shared core (context, auth) answers a /fhir request's 401 or 503 in FHIR's format too,
so these live below the FHIR door: the core never imports the door.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from telekol.fhir.outcome import operation_outcome

FHIR_JSON = "application/fhir+json"


def fhir_response(resource: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Return a resource as application/fhir+json."""
    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    response = Response(body, status=status, mimetype=FHIR_JSON)
    response.headers.update(headers or {})
    return response


def outcome_response(status: int, code: str, diagnostics: str) -> Response:
    """Return an OperationOutcome error with `status`."""
    return fhir_response(operation_outcome("error", code, diagnostics), status)
