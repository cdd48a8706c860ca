"""One validation of what a request carries, at the door, before any view runs.

Views parse their own parameters; this refuses, for every route, the input that made views
fail with 500 (issue 11, row 7) before it reaches them, with 400 and the reason:
- numbers written with other digits than ASCII 0-9 (`str.isdigit()` accepts "²" and "٣"),
- integers outside what the database stores (|n| >= 2^63), in the query, a form or JSON,
- dates before year 1000 or after 9000 (year 9999 plus a day or a time zone overflows),
- NUL and other control characters in path segments, NUL in values (PostgreSQL refuses it),
- JSON nested deeper than MAX_DEPTH, NaN or Infinity in JSON.
Integer path variables (`<int:...>`) match only ASCII digits up to 2^31 - 1, the range of
the database's INTEGER ids (`BoundedInt`); a value the database still refuses as out of its
range (sqlalchemy DataError) is answered 400 too. Errors on `/fhir` are OperationOutcomes and
on `/api` JSON, whatever raised them, 500 included.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, NotFound
from werkzeug.routing import IntegerConverter

MAX_DEPTH = 32  # FHIR resources nest about 6 deep; a Bundle of them about 10
MAX_INT = 2**63 - 1
MAX_ID = 2**31 - 1  # INTEGER primary keys (PostgreSQL int4)
FIRST_YEAR, LAST_YEAR = 1000, 9000
_PREFIXED = re.compile(r"(?:eq|ne|gt|lt|ge|le|sa|eb|ap)(.*)", re.DOTALL)  # FHIR search
# A date or instant (FHIR precision: year-month, day, time): "2026-11", "10000-01-01T00:00Z".
_DATE = re.compile(r"([0-9]{4,})-[0-9]{2}(?:-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadInput(BadRequest):
    """A request value the doors refuse, with the reason."""


class BoundedInt(IntegerConverter):
    """`<int:...>` of ASCII digits only, at most MAX_ID; anything else does not match (404)."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Bound `<int:>` path variables (before any route is added), check every request first,
    and answer errors in the door's format."""
    app.url_map.converters["int"] = BoundedInt
    app.before_request(check_request)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(InternalServerError, internal_error)
    app.register_error_handler(DataError, out_of_range)


def check_request() -> None:
    """Refuse the request (BadInput, NotFound) when a value is one the doors never accept."""
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and _CONTROL.search(value):
            raise NotFound()
    for where, values in (("query", request.args), ("form", request.form)):
        for name, value in values.items(multi=True):
            reason = value_problem(value)
            if reason:
                raise BadInput(f"{where} parameter {name!r}: {reason}")
    reason = json_problem(request.get_data(cache=True))
    if reason:
        raise BadInput(f"JSON body: {reason}")


def value_problem(value: str) -> str:
    """Return why a text value is refused ("" when it is not)."""
    if "\x00" in value:
        return "NUL characters are not allowed"
    core = value.strip()
    prefixed = _PREFIXED.fullmatch(core)
    for candidate in (core, prefixed.group(1) if prefixed else ""):
        reason = _number_problem(candidate)
        date = _DATE.fullmatch(candidate)
        if not reason and date and not FIRST_YEAR <= int(date.group(1)) <= LAST_YEAR:
            reason = f"the date is out of range (years {FIRST_YEAR}-{LAST_YEAR})"
        if reason:
            return reason
    return ""


def _number_problem(text: str) -> str:
    """Return why a number ("12", "-1.5", "٣", "²") is refused; "" for other text."""
    body = text[1:] if text[:1] in ("+", "-") else text
    whole, _, fraction = body.partition(".")
    if not whole or not all(c.isdigit() or c.isnumeric() for c in whole + fraction):
        return ""
    if not body.isascii():
        return "numbers are written with the digits 0-9 only"
    if not fraction and int(whole) > MAX_INT:
        return f"the number is out of range (at most {MAX_INT})"
    return ""


def json_problem(body: bytes) -> str:
    """Return why a JSON body is refused ("" when it is not, or when it is not JSON at all:
    the view says so)."""
    start = body.lstrip()[:1]
    if start not in (b"[", b"{"):
        return ""
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant)
    except _Constant as constant:
        return f"{constant} is not a JSON number"
    except (ValueError, RecursionError):
        return ""  # not JSON: the view answers that in its own words
    return _leaf_problem(parsed)


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _depth(body: bytes) -> int:
    """Return the deepest nesting of arrays and objects, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _leaf_problem(value: Any) -> str:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT:
            return f"the number is out of range (at most {MAX_INT})"
        elif isinstance(item, str):
            reason = value_problem(item) if len(item) <= 64 else (
                "NUL characters are not allowed" if "\x00" in item else "")
            if reason:
                return reason
    return ""


def http_error(error: HTTPException) -> Response | HTTPException:
    """Answer an HTTP error as an OperationOutcome on /fhir, JSON on /api, unchanged on pages."""
    return _answer(error.code or 500, error.description or error.name) or error


def internal_error(error: InternalServerError) -> Response | InternalServerError:
    """Answer an unexpected failure (already logged by Flask) in the door's format."""
    return _answer(500, "the server failed to answer this request; it has been logged") or error


def out_of_range(_error: DataError) -> Response | BadInput:
    """Answer a value the database refused as invalid for its column (no SQL in the reason)."""
    from telekol.server.web.context import db

    db().rollback()
    reason = "a value is out of range or of the wrong kind for what it names"
    return _answer(400, reason) or BadInput(reason)


def _answer(status: int, reason: str) -> Response | None:
    from telekol.server.web.context import door_of

    door = door_of(request.path)
    if door == "fhir":
        from telekol.server.web.errors import outcome_response

        code = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                405: "not-supported", 413: "too-costly"}.get(status, "exception")
        return outcome_response(status, code, reason)
    if door == "api":
        response = jsonify(error=reason)
        response.status_code = status
        return response
    return None
