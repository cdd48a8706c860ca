"""FHIR reads and searches of the questionnaires (CAT, COPD symptom diary) and of the
stored QuestionnaireResponses, on the /fhir blueprint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from flask import Response, request
from sqlalchemy import false, or_
from sqlmodel import col, select
from telekol.fhir.questionnaire import QUESTIONNAIRES, questionnaire_resource
from telekol.server.care.access import visible_patient_ids
from telekol.server.fhir_store import resources as fhir_resources
from telekol.server.fhir_store.paging import Page, SortKey
from telekol.server.fhir_store.search import (
    check_params,
    count_param,
    date_clause,
    parse_date,
    reference_id,
    sort_key,
    summary_count,
    tokens,
)
from telekol.server.models import StoredResource, User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db
from telekol.server.web.fhir.http import (
    bp,
    fhir_auth,
    fhir_response,
    not_found,
    resource_response,
    searchset,
)
from telekol.server.web.fhir.search import search

PAGING = {"_count", "_cursor", "_summary", "_format"}
QUESTIONNAIRE_PARAMS = {"url", "name", "status", "_id", *PAGING}
RESPONSE_PARAMS = {"patient", "subject", "questionnaire", "authored", "_id", "_sort", *PAGING}
# When the definitions in telekol.fhir.questionnaire last changed: their meta.lastUpdated.
# Bump it with any change to them (meta.versionId, a hash of the content, changes by itself).
DEFINITIONS_UPDATED = datetime(2026, 11, 25, tzinfo=UTC)
_RESPONSE = "QuestionnaireResponse"


def definition(kind: str) -> dict[str, Any]:
    """Return the Questionnaire resource of `kind` with a stable meta."""
    return fhir_resources.with_meta(questionnaire_resource(kind), DEFINITIONS_UPDATED)


@bp.get("/Questionnaire/<ident>")
@fhir_auth
def read_questionnaire(ident: str) -> Response:
    """Read a questionnaire definition (not patient data: any signed-in user)."""
    if ident not in QUESTIONNAIRES:
        return not_found("Questionnaire", ident)
    return resource_response(definition(ident))


@bp.get("/Questionnaire")
@fhir_auth
def search_questionnaires() -> Response:
    """Search the definitions by `url`, `name` (starts with), `status` or `_id`."""
    params = request.args.to_dict(flat=False)
    check_params(params, QUESTIONNAIRE_PARAMS)
    found = [definition(kind) for kind in sorted(QUESTIONNAIRES)]
    for raw in params.get("url", []):
        found = [q for q in found if q["url"] in raw.split(",")]
    for raw in params.get("name", []):
        prefixes = [v.strip().lower() for v in raw.split(",")]
        found = [q for q in found if q["name"].lower().startswith(tuple(prefixes))]
    for raw in params.get("status", []):
        found = [q for q in found if q["status"] in {code for _, code in tokens(raw)}]
    for raw in params.get("_id", []):
        found = [q for q in found if q["id"] in raw.split(",")]
    page = _memory_page(found, params)
    return fhir_response(searchset("Questionnaire", params, page, page.rows))


class _IdColumn:
    """Stands in for a column so SortKey writes and reads cursors over in-memory rows."""

    key = "id"


_BY_ID = SortKey(_IdColumn, _IdColumn)


def _memory_page(resources: list[dict[str, Any]], params: dict[str, list[str]]) -> Page:
    """Keyset-page resources sorted by id, with the same cursors as the SQL searches."""
    count, total = count_param(params), len(resources)
    if summary_count(params) or count == 0:
        return Page((), total, count)
    raw = params.get("_cursor", [None])[-1]
    backwards, ident = False, None
    if raw:
        backwards, _, ident = _BY_ID.parse(raw)
    ordered = sorted(resources, key=lambda r: r["id"])
    if ident is None:
        window, more = ordered[:count], len(ordered) > count
    elif backwards:
        before = [r for r in ordered if r["id"] < ident]
        window, more = before[-count:], len(before) > count
    else:
        after = [r for r in ordered if r["id"] > ident]
        window, more = after[:count], len(after) > count
    if not window:
        return Page((), total, count)
    has_next, has_previous = (True, more) if backwards else (more, raw is not None)
    first, last = (SimpleNamespace(id=window[i]["id"]) for i in (0, -1))
    return Page(window, total, count, _BY_ID.cursor(last, False) if has_next else None,
                _BY_ID.cursor(first, True) if has_previous else None)


def response_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the stored QuestionnaireResponses of patients `user` may see matching the search."""
    check_params(params, RESPONSE_PARAMS)
    query = select(StoredResource).where(
        StoredResource.resource_type == _RESPONSE,
        col(StoredResource.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
    for raw in params.get("_id", []):
        query = query.where(col(StoredResource.id).in_(raw.split(",")))
    for name in ("patient", "subject"):
        for raw in params.get(name, []):
            ids = [reference_id(part, "Patient") for part in raw.split(",")]
            query = query.where(col(StoredResource.patient_id).in_(ids))
    for raw in params.get("questionnaire", []):
        urls = [url for url in map(_canonical, raw.split(",")) if url]
        # The stored JSON is written by this server with fixed separators (questionnaires._json).
        needles = [json.dumps({"questionnaire": url}, separators=(",", ":"))[1:-1] for url in urls]
        query = query.where(or_(*[col(StoredResource.resource).contains(n, autoescape=True)
                                  for n in needles]) if needles else false())
    for raw in params.get("authored", []):
        query = query.where(date_clause(parse_date(raw), col(StoredResource.effective)))
    return query


def _canonical(raw: str) -> str | None:
    """Return our canonical URL for `cat`, `Questionnaire/cat` or the canonical itself."""
    value = raw.strip()
    urls = {q.url: q.url for q in QUESTIONNAIRES.values()}
    if value in urls:
        return value
    if "://" in value or "|" in value:
        return None  # another server's questionnaire, or a version we never published
    kind = reference_id(value, "Questionnaire")
    return QUESTIONNAIRES[kind].url if kind in QUESTIONNAIRES else None


def response_sort(params: dict[str, list[str]]) -> SortKey:
    """Return the keyset order `_sort` names: authored (default -authored), _lastUpdated, _id."""
    return sort_key(params, "-authored", {"authored": StoredResource.effective,
                                          "_lastUpdated": StoredResource.last_updated,
                                          "_id": StoredResource.id}, StoredResource.id)


@bp.get("/QuestionnaireResponse/<ident>")
@fhir_auth
def read_questionnaire_response(ident: str) -> Response:
    """Read a response of a patient the caller may see (others look absent)."""
    row = db().exec(response_filter(the_user(), {}).where(StoredResource.id == ident)).first()
    if row is None:
        return not_found(_RESPONSE, ident)
    note(row.patient_id, "read", f"{_RESPONSE}/{ident}")
    return resource_response(json.loads(row.resource))


@bp.get("/QuestionnaireResponse")
@fhir_auth
def search_questionnaire_responses() -> Response:
    """Search responses by `patient`/`subject`, `questionnaire`, `authored`, `_id`."""
    params = request.args.to_dict(flat=False)
    return search(_RESPONSE, response_filter(the_user(), params), response_sort(params),
                  lambda row: json.loads(row.resource), patient_of=lambda row: row.patient_id)

