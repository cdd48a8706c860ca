"""Answer a FHIR search: one keyset page rendered as a searchset Bundle, noted for the audit.

Every resource family of the /fhir door answers its searches here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlmodel import col
from telekol.server.care.access import visible_patient_ids
from telekol.server.fhir_store.paging import SortKey, fetch_page
from telekol.server.fhir_store.search import count_param, summary_count
from telekol.server.models import Patient
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import fhir_response, searchset

# Search parameters recorded by name only: an identifier's value may be a CPR number.
_UNRECORDED = {"identifier"}


def search(kind: str, query: Any, key: SortKey, render: Callable[[Any], dict[str, Any]],
           include: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
           patient_of: Callable[[Any], str | None] | None = None) -> Response:
    """Answer a search: one keyset page of `query` rendered, plus included resources.

    With `patient_of`, note the patients of the page (and those the search names) for the
    audit log.
    """
    params = request.args.to_dict(flat=False)
    page = fetch_page(db(), query, key, count_param(params),
                      params.get("_cursor", [None])[-1], summary_count(params))
    if patient_of is not None:
        shown = [patient for patient in map(patient_of, page.rows) if patient]
        note([*shown, *_named_patients(params)], "search", audited_search(kind, params))
    matches = [render(row) for row in page.rows]
    included = include(matches) if include and matches else []
    return fhir_response(searchset(kind, params, page, matches, included))


def audited_search(kind: str, params: dict[str, list[str]]) -> str:
    """Return the search as the audit log records it: no identifier values (CPR numbers)."""
    shown = [f"{name}={value}" if name not in _UNRECORDED else name
             for name, values in sorted(params.items()) if name not in ("_cursor", "_format")
             for value in values]
    return f"{kind}?{'&'.join(shown)}"[:300] if shown else kind


def _named_patients(params: dict[str, list[str]]) -> list[str]:
    # A search naming a patient tells about them even when nothing matches.
    named = [part.strip().rstrip("/").rpartition("/")[2] for name in ("patient", "subject")
             for raw in params.get(name, []) for part in raw.split(",")]
    if not named:
        return []
    return list(db().exec(visible_patient_ids(the_user()).where(col(Patient.id).in_(named))))
