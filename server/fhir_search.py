"""FHIR search parameters turned into SQL over the indexed columns (no Flask here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, not_
from sqlmodel import col, select
from telekol.fhir.codes import MEASUREMENT_TYPES, type_for_coding
from telekol.server.access import visible_patient_ids
from telekol.server.models import Observation, User

PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
_DATE_RE = re.compile(
    r"\A(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})"
    r"(:(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?\Z")
MAX_COUNT = 1000
DEFAULT_COUNT = 50


class SearchError(ValueError):
    """A search parameter the server cannot honour; the door answers 400."""


@dataclass(frozen=True)
class DateBound:
    """A date search value: its prefix and the instant range [low, high) it denotes."""

    prefix: str
    low: datetime
    high: datetime


def parse_date(raw: str) -> DateBound:
    """Parse `ge2026-11-25`, `lt2026-11-25T07:00:00+01:00` and the like."""
    value = raw.strip().replace(" ", "+")  # an unencoded '+' in a URL arrives as a space
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    match = _DATE_RE.match(text)
    if not match:
        raise SearchError(f"date value {raw!r} is not a FHIR date, dateTime or instant")
    try:
        low, step = _range_start(match)
    except ValueError as error:
        raise SearchError(f"date value {raw!r} is not a real date: {error}") from None
    return DateBound(prefix, low, _add(low, step))


def _range_start(match: re.Match[str]) -> tuple[datetime, str]:
    parts = match.groupdict()
    tz = UTC
    if parts["tz"] and parts["tz"] != "Z":
        sign = 1 if parts["tz"][0] == "+" else -1
        hours, minutes = int(parts["tz"][1:3]), int(parts["tz"][4:6])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    year, month, day = int(parts["y"]), int(parts["m"] or 1), int(parts["d"] or 1)
    if parts["H"] is None:
        date(year, month, day)  # validates
        step = "day" if parts["d"] else ("month" if parts["m"] else "year")
        return datetime(year, month, day, tzinfo=UTC), step
    micro = int(float(parts["f"]) * 1_000_000) if parts["f"] else 0
    start = datetime(year, month, day, int(parts["H"]), int(parts["M"]), int(parts["S"] or 0),
                     micro, tzinfo=tz)
    step = "micro" if parts["f"] else ("second" if parts["S"] else "minute")
    return start.astimezone(UTC), step


def _add(start: datetime, step: str) -> datetime:
    if step == "year":
        return start.replace(year=start.year + 1)
    if step == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    sizes = {"day": timedelta(days=1), "minute": timedelta(minutes=1),
             "second": timedelta(seconds=1), "micro": timedelta(microseconds=1)}
    return start + sizes[step]


def date_clause(bound: DateBound) -> Any:
    """Return the SQL condition on Observation.effective for one date value."""
    column = col(Observation.effective)
    return {
        "eq": and_(column >= bound.low, column < bound.high),
        "ne": not_(and_(column >= bound.low, column < bound.high)),
        "lt": column < bound.low, "eb": column < bound.low,
        "le": column < bound.high,
        "gt": column >= bound.high, "sa": column >= bound.high,
        "ge": column >= bound.low,
    }[bound.prefix]


def code_types(raw: str) -> set[str]:
    """Map `system|code` tokens (comma = OR) to the measurement types they name."""
    found: set[str] = set()
    for token in raw.split(","):
        system, bar, code = token.partition("|")
        if not bar:
            system, code = "", token
        kinds = ([type_for_coding(system, code)] if system else
                 [k for k in MEASUREMENT_TYPES.values()
                  if any(c[1] == code for c in k.codings)])
        found.update(k.code for k in kinds if k is not None)
    return found


def patient_reference(raw: str) -> str:
    """Return the patient id from `123`, `Patient/123` or a full URL ending in it."""
    value = raw.strip()
    if "/" in value:
        kind, _, ident = value.rstrip("/").rpartition("/")
        if not kind.endswith("Patient"):
            raise SearchError(f"{raw!r} does not reference a Patient")
        value = ident
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        raise SearchError(f"{raw!r} is not a valid Patient id")
    return value


OBSERVATION_PARAMS = {"patient", "subject", "code", "date", "_sort", "_count", "_offset",
                      "_id", "_format", "_summary"}


def observation_query(user: User, params: dict[str, list[str]]) -> tuple[Any, int, int]:
    """Return (query, count, offset) for an Observation search by `user`."""
    unknown = set(params) - OBSERVATION_PARAMS
    if unknown:
        raise SearchError(f"unsupported search parameter(s): {', '.join(sorted(unknown))}")
    query = select(Observation).where(
        col(Observation.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
    for name in ("patient", "subject"):
        for raw in params.get(name, []):
            ids = [patient_reference(part) for part in raw.split(",")]
            query = query.where(col(Observation.patient_id).in_(ids))
    for raw in params.get("_id", []):
        query = query.where(col(Observation.id).in_(raw.split(",")))
    for raw in params.get("code", []):
        query = query.where(col(Observation.type_code).in_(code_types(raw)))
    for raw in params.get("date", []):
        query = query.where(date_clause(parse_date(raw)))
    query = query.order_by(*_sort(params.get("_sort", ["-date"])[-1]))
    return query, _count(params), _offset(params)


def _sort(raw: str) -> list[Any]:
    keys = []
    for key in raw.split(","):
        descending = key.startswith("-")
        name = key.lstrip("-")
        if name not in ("date", "_lastUpdated", "_id"):
            raise SearchError(f"cannot sort by {name!r}; use date, -date, _lastUpdated or _id")
        column = {"date": Observation.effective, "_lastUpdated": Observation.last_updated,
                  "_id": Observation.id}[name]
        keys.append(col(column).desc() if descending else col(column).asc())
    last = col(Observation.id)
    return [*keys, last.desc() if raw.startswith("-") else last.asc()]


def _count(params: dict[str, list[str]]) -> int:
    raw = params.get("_count", [str(DEFAULT_COUNT)])[-1]
    if not raw.isdigit():
        raise SearchError(f"_count must be a non-negative integer, not {raw!r}")
    return min(int(raw), MAX_COUNT)


def _offset(params: dict[str, list[str]]) -> int:
    raw = params.get("_offset", ["0"])[-1]
    if not raw.isdigit():
        raise SearchError(f"_offset must be a non-negative integer, not {raw!r}")
    return int(raw)
