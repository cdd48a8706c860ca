"""Parse a device's `taken_at` (RFC 3339 with offset) and render it as a FHIR dateTime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_TAKEN_AT = datetime(2000, 1, 1, tzinfo=UTC)

# [0-9], not \d: \d would also accept non-ASCII digits such as "٢".
_RFC3339_RE = re.compile(
    r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))\Z"
)
# FHIR R4 dateTime, restricted to the form with seconds and a time zone.
FHIR_DATETIME_RE = re.compile(
    r"\A([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])"
    r"-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))\Z"
)
_EXAMPLE = "2026-11-25T07:31:00+01:00"


def parse_taken_at(text: object, received_at: datetime, errors: list[str]) -> datetime | None:
    """Return `taken_at` as an aware datetime, appending every problem to errors."""
    found = _RFC3339_RE.match(text) if isinstance(text, str) else None
    if found is None:
        errors.append(
            f"taken_at {_show(text)} must be an RFC 3339 date-time with seconds and a UTC "
            f"offset, e.g. {_EXAMPLE}"
        )
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    zone = UTC if zulu else timezone(-offset if sign == "-" else offset)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    except ValueError:
        errors.append(f"taken_at {_show(text)} is not a real calendar date and time")
        return None
    if when > received_at + FUTURE_TOLERANCE:
        errors.append(
            f"taken_at {_show(text)} is in the future (more than 5 minutes after receipt)"
        )
    elif when < EARLIEST_TAKEN_AT:
        errors.append(f"taken_at {_show(text)} is before 2000-01-01: the device clock is not set")
    return when


def fhir_datetime_text(text: str, when: datetime) -> str:
    """Return the device's own text if it is a FHIR dateTime, else a normalised one."""
    if FHIR_DATETIME_RE.match(text):
        return text
    normalised = when.isoformat()
    if FHIR_DATETIME_RE.match(normalised):
        return normalised
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _show(value: object) -> str:
    shown = "null" if value is None else repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
