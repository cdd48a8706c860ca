"""The HTTP side of /fhir: the blueprint, FHIR JSON responses, negotiation, errors, bundles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from flask_wtf.csrf import CSRFError
from telekol.server.fhir_store.paging import InvalidCursor, Page
from telekol.server.fhir_store.search import SearchError
from telekol.server.web.auth import signed_in
from telekol.server.web.errors import FHIR_JSON, fhir_response, outcome_response
from telekol.server.web.extensions import csrf
from telekol.server.web.headers import site_origin
from werkzeug.exceptions import HTTPException

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
csrf.exempt(bp)

_ACCEPTABLE = {FHIR_JSON, "application/json", "application/json+fhir", "*/*", "application/*"}
JSON_FORMATS = ("json", FHIR_JSON, "application/json", "application/json+fhir")


def resource_response(resource: dict[str, Any], status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
    """Return a read resource with its ETag (weak, from meta.versionId)."""
    etag = {"ETag": f'W/"{resource["meta"]["versionId"]}"'}
    return fhir_response(resource, status, {**etag, **(headers or {})})


def not_found(kind: str, ident: str) -> Response:
    """Answer 404 exactly as for an absent resource (also used for denials)."""
    return outcome_response(404, "not-found", f"{kind}/{ident} is not known")


@bp.before_request
def negotiate() -> Response | None:
    """Refuse formats other than FHIR JSON (406) before doing any work."""
    wanted = request.args.get("_format")
    if wanted and wanted not in JSON_FORMATS:
        return outcome_response(406, "not-supported", f"_format {wanted!r}: only JSON is served")
    accept = request.headers.get("Accept")
    if not wanted and accept and not any(
            part.split(";")[0].strip() in _ACCEPTABLE for part in accept.split(",")):
        return outcome_response(406, "not-supported", f"cannot produce {accept}; use {FHIR_JSON}")
    return None


def fhir_auth(view: Callable[..., Response]) -> Callable[..., Response]:
    """Require an authenticated user; answer 401 OperationOutcome otherwise."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if signed_in() is None:
            response = outcome_response(401, "login", "Authentication required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="telekol"'
            return response
        return view(*args, **kwargs)
    return wrapper


@bp.errorhandler(SearchError)
@bp.errorhandler(InvalidCursor)
def bad_search(error: Exception) -> Response:
    """Answer 400 for a search the server cannot honour."""
    return outcome_response(400, "invalid", str(error))


@bp.errorhandler(CSRFError)
def cookie_write(_error: Exception) -> Response:
    """Refuse cookie-authenticated writes: /fhir writes need a bearer token."""
    return outcome_response(403, "security", "writes need Authorization: Bearer <token>")


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def routing_error(error: HTTPException) -> Response | HTTPException:
    """Answer unknown FHIR paths and interactions with an OperationOutcome (others as every
    HTTP error: JSON on /api, unchanged on pages)."""
    if not request.path.startswith("/fhir"):
        from telekol.server.web.door_checks import http_error

        return http_error(error)
    if error.code == 405:
        return outcome_response(405, "not-supported", f"{request.method} {request.path} is not "
                                "supported; see /fhir/metadata")
    return outcome_response(404, "not-found", f"{request.path} is not implemented here")


def base_url() -> str:
    """Return this server's FHIR base URL (its trusted origin, headers.site_origin)."""
    return site_origin() + "/fhir"  # never the Host header as it came (headers.py)


def searchset(kind: str, params: dict[str, list[str]], page: Page,
              matches: Sequence[dict[str, Any]],
              included: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Wrap a page of resources in a searchset Bundle with self/next/previous links."""
    current = params.get("_cursor", [None])[-1]
    links = [{"relation": "self", "url": _page_url(kind, params, current)}]
    for relation, cursor in (("next", page.next_cursor), ("previous", page.previous_cursor)):
        if cursor:
            links.append({"relation": relation, "url": _page_url(kind, params, cursor)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": page.total, "link": links}
    entries = [_entry(r, "match") for r in matches] + [_entry(r, "include") for r in included]
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {"fullUrl": f"{base_url()}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": mode}}


def _page_url(kind: str, params: dict[str, list[str]], cursor: str | None) -> str:
    query = [(k, v) for k, values in params.items() if k != "_cursor" for v in values]
    if cursor:
        query.append(("_cursor", cursor))
    return f"{base_url()}/{kind}" + (f"?{urlencode(query)}" if query else "")
