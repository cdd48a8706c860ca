"""FHIR search parameters turned into SQL over the indexed columns (no Flask here)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, false, not_, or_
from sqlmodel import col, select
from telekol.fhir.codes import MEASUREMENT_TYPES, OBSERVATION_KEY_SYSTEM, type_for_coding
from telekol.fhir.questionnaire import QUESTIONNAIRES, SCORES_SYSTEM
from telekol.server.care.access import visible_patient_ids
from telekol.server.fhir_store.paging import SortKey
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


def date_clause(bound: DateBound, column: Any = None) -> Any:
    """Return the SQL condition on an instant column (default Observation.effective)."""
    column = col(Observation.effective) if column is None else column
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
        found.update(q.type_code for q in QUESTIONNAIRES.values()
                     if q.score_code == code and system in ("", SCORES_SYSTEM))
    return found


def reference_id(raw: str, kind: str) -> str:
    """Return the id from `123`, `Kind/123` or a full URL ending in it."""
    value = raw.strip()
    if "/" in value:
        named, _, ident = value.rstrip("/").rpartition("/")
        if not named.endswith(kind):
            raise SearchError(f"{raw!r} does not reference a {kind}")
        value = ident
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        raise SearchError(f"{raw!r} is not a valid {kind} id")
    return value


def tokens(raw: str) -> list[tuple[str | None, str]]:
    """Split a token search value into (system or None, code) pairs (comma = OR)."""
    pairs: list[tuple[str | None, str]] = []
    for token in raw.split(","):
        system, bar, code = token.rpartition("|")
        pairs.append((system if bar else None, code))
    return pairs


def client_identifier_key(system: str, value: str) -> str:
    """Return the msg_id that stands for a client's own identifier of a manual reading."""
    return "id-" + hashlib.sha256(f"{system}|{value}".encode()).hexdigest()[:40]


def identifier_clause(raw: str) -> Any:
    """Match the observation key (`{device}-{msg_id}-{type}`) or a manual entry's identifier."""
    key = col(Observation.device_id) + "-" + col(Observation.msg_id) + "-" + col(
        Observation.type_code)
    options = []
    for system, value in tokens(raw):
        if system in (None, "", OBSERVATION_KEY_SYSTEM):
            options.append(key == value)
        else:
            options.append(and_(col(Observation.device_id) == MANUAL_DEVICE,
                                col(Observation.msg_id) == client_identifier_key(system, value)))
    return or_(*options)


OBSERVATION_PARAMS = {"patient", "subject", "code", "date", "identifier", "status",
                      "_lastUpdated", "_id", "_sort", "_count", "_cursor", "_summary",
                      "_include", "_format"}
OBSERVATION_INCLUDES = {"Observation:patient", "Observation:subject", "Observation:device"}
# Every stored Observation is final (devices and clinicians send finished readings).
STORED_STATUS = "final"
MANUAL_DEVICE = "manual"


def observation_filter(user: User, params: dict[str, list[str]]) -> Any:
    """Return the Observations `user` may see that match every search parameter."""
    check_params(params, OBSERVATION_PARAMS)
    includes(params, OBSERVATION_INCLUDES)
    query = select(Observation).where(
        col(Observation.patient_id).in_(visible_patient_ids(user).scalar_subquery()))
    for name in ("patient", "subject"):
        for raw in params.get(name, []):
            ids = [reference_id(part, "Patient") for part in raw.split(",")]
            query = query.where(col(Observation.patient_id).in_(ids))
    for raw in params.get("_id", []):
        query = query.where(col(Observation.id).in_(raw.split(",")))
    for raw in params.get("code", []):
        query = query.where(col(Observation.type_code).in_(code_types(raw)))
    for raw in params.get("date", []):
        query = query.where(date_clause(parse_date(raw)))
    for raw in params.get("_lastUpdated", []):
        query = query.where(date_clause(parse_date(raw), col(Observation.last_updated)))
    for raw in params.get("identifier", []):
        query = query.where(identifier_clause(raw))
    for raw in params.get("status", []):
        if STORED_STATUS not in {code for _, code in tokens(raw)}:
            query = query.where(false())
    return query


def sort_key(params: dict[str, list[str]], default: str, columns: dict[str, Any],
             id_column: Any) -> SortKey:
    """Return the keyset order `_sort` names among `columns` (`default` when absent)."""
    raw = params.get("_sort", [default])[-1]
    name = raw.removeprefix("-")
    if name not in columns:
        raise SearchError(f"cannot sort by {raw!r}; use one of {', '.join(columns)}, each "
                          "optionally with a leading -")
    return SortKey(col(columns[name]), col(id_column), raw.startswith("-"), name != "_id")


def observation_sort(params: dict[str, list[str]]) -> SortKey:
    """Return the keyset order `_sort` names: date (default -date), _lastUpdated or _id."""
    return sort_key(params, "-date", {"date": Observation.effective,
                                      "_lastUpdated": Observation.last_updated,
                                      "_id": Observation.id}, Observation.id)


def check_params(params: dict[str, list[str]], allowed: set[str]) -> None:
    """Refuse a search with a parameter this server does not implement (strict handling)."""
    unknown = set(params) - allowed
    if unknown:
        raise SearchError(f"unsupported search parameter(s): {', '.join(sorted(unknown))}")


def includes(params: dict[str, list[str]], allowed: set[str]) -> list[str]:
    """Return the `_include` values of a search, refusing ones not implemented."""
    wanted = params.get("_include", [])
    for value in wanted:
        if value not in allowed:
            supported = ", ".join(sorted(allowed)) or "none"
            raise SearchError(f"_include={value} is not supported here; supported: {supported}")
    return wanted


def summary_count(params: dict[str, list[str]]) -> bool:
    """Return whether `_summary=count` asks for the total only."""
    values = set(params.get("_summary", []))
    if values - {"count", "false"}:
        raise SearchError("_summary supports count and false only")
    return "count" in values


def count_param(params: dict[str, list[str]]) -> int:
    """Return the page size `_count` asks for (0 = total only), capped at MAX_COUNT."""
    raw = params.get("_count", [str(DEFAULT_COUNT)])[-1]
    if not raw.isdigit():
        raise SearchError(f"_count must be a non-negative integer, not {raw!r}")
    return min(int(raw), MAX_COUNT)
