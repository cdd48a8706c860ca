"""Free text a person types (reasons, notes): one set of checks for every service."""

from __future__ import annotations

from typing import Any

MAX_TEXT = 1000  # the columns that hold reasons and notes are this long (server/models.py)


def checked_text(value: Any, name: str, error: type[Exception], *, required: bool = False,
                 limit: int = MAX_TEXT) -> str:
    """Return `value` stripped, or raise `error` saying what is wrong with the `name`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise error(f"{name} must be text")
    value = value.strip()
    if required and not value:
        raise error(f"a {name} is required")
    if len(value) > limit:
        raise error(f"the {name} must be at most {limit} characters")
    return value
