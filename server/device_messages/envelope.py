"""The envelope every device payload shares (contract §3): size, JSON, array, msg_id, taken_at.

Pure: no I/O, and it never raises for any payload. Each kind of payload (measurements,
questionnaire responses) supplies only the parser of one object's own fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from telekol.server.device_messages.timestamps import fhir_datetime_text, parse_taken_at

MAX_PAYLOAD_BYTES = 262_144
MAX_OBJECTS = 500
# \A and \Z, not ^ and $: "$" would also match before a trailing newline.
MSG_ID_RE = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")

T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """A payload or object that was not accepted, with every reason."""

    msg_id: str | None
    errors: tuple[str, ...]
    raw: str


@dataclass(frozen=True)
class Envelope:
    """The valid identity and time of one object."""

    msg_id: str
    taken_at: datetime
    taken_at_text: str


ObjectParser = Callable[[dict[str, Any], datetime, str], "T | Rejection"]


RETAINED_REASON = ("retained messages are not accepted: publish with retain=0 "
                   "(the broker would deliver a retained message again)")


class _NonFiniteToken(ValueError):
    pass


class _Repeated(dict[str, Any]):
    """A JSON object in which some key appeared more than once (Python would keep the last)."""

    repeated: tuple[str, ...] = ()


def parse_payload(raw: bytes, received_at: datetime, parse_object: ObjectParser[T],
                  noun: str = "object") -> list[T | Rejection]:
    """Split a payload into objects and parse each with `parse_object`, never raising."""
    data = bytes(raw)
    document, error = _load(data)
    if error is None and isinstance(document, list):
        error = _check_array(document, noun)
    elif error is None and not isinstance(document, dict):
        error = "payload must be a JSON object or an array of objects"
    if error is not None:
        return [Rejection(None, (error,), data[:MAX_PAYLOAD_BYTES].decode("utf-8", "replace"))]
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    items = document if isinstance(document, list) else [document]
    return [_parse_item(item, received_at, parse_object) for item in items]


def repeated_keys(value: Any) -> tuple[str, ...]:
    """Return the keys repeated within any one object anywhere in a loaded JSON value."""
    found: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node, _Repeated):
                found.extend(node.repeated)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return tuple(dict.fromkeys(found))


def refuse_retained(items: Sequence[T | Rejection]) -> list[T | Rejection]:
    """Turn every object of a message the device published retained into a Rejection."""
    refused: list[T | Rejection] = []
    for item in items:
        if isinstance(item, Rejection):
            refused.append(Rejection(item.msg_id, (*item.errors, RETAINED_REASON), item.raw))
        else:
            refused.append(Rejection(getattr(item, "msg_id", None), (RETAINED_REASON,),
                                     getattr(item, "raw", "")))
    return refused


def check_envelope(obj: dict[str, Any], received_at: datetime,
                   errors: list[str]) -> Envelope | None:
    """Return the object's msg_id and taken_at if both are valid, appending every problem."""
    before = len(errors)
    _check_msg_id(obj, errors)
    taken_at = None
    if "taken_at" not in obj:
        errors.append("taken_at is required")
    else:
        taken_at = parse_taken_at(obj["taken_at"], received_at, errors)
    if len(errors) > before or taken_at is None:
        return None
    return Envelope(obj["msg_id"], taken_at, fhir_datetime_text(obj["taken_at"], taken_at))


def echo(msg_id: Any) -> str | None:
    """Return the msg_id to echo in a status: a short string that can be stored as UTF-8."""
    if isinstance(msg_id, str) and len(msg_id) <= 128 and is_text(msg_id):
        return msg_id
    return None


def is_text(value: str) -> bool:
    """Return whether a string is printable Unicode that any database can store."""
    # Control characters (NUL above all) cannot be stored in PostgreSQL text and
    # have no place in a model name or an id.
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from escapes such as "\ud800"
        return False
    return True


def _load(data: bytes) -> tuple[Any, str | None]:
    if len(data) > MAX_PAYLOAD_BYTES:
        return None, f"payload is {len(data)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted"
    try:
        text = data.decode("utf-8-sig")  # RFC 8259 lets a parser ignore a byte order mark
    except UnicodeDecodeError:
        return None, "payload is not valid UTF-8"
    try:
        return json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_mark_repeated), None
    except _NonFiniteToken:
        return None, "payload contains NaN or Infinity, which are not valid JSON"
    except RecursionError:
        return None, "payload is nested too deeply"
    except ValueError as exc:  # also integers with more than 4300 digits
        return None, f"payload is not valid JSON: {exc}"


def _reject_constant(token: str) -> Any:
    raise _NonFiniteToken(token)


def _mark_repeated(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called for every object at every depth. RFC 8259 leaves a repeated name's meaning to
    # the parser (Python keeps the last): mark the object, so the object holding it is
    # refused rather than stored with a guess at what the device meant.
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _Repeated(obj)
    counts: dict[str, int] = {}
    for key, _value in pairs:
        counts[key] = counts.get(key, 0) + 1
    marked.repeated = tuple(key for key, count in counts.items() if count > 1)
    return marked


def _repeated_reason(keys: tuple[str, ...]) -> str:
    shown = ", ".join(_quoted(key) for key in keys[:5])
    noun = "key" if len(keys) == 1 else "keys"
    return (f"duplicate JSON {noun} {shown}: a key may appear only once in an object "
            "(at any depth)")


def _quoted(key: str) -> str:
    shown = json.dumps(key)  # escapes control characters and quotes
    return shown if len(shown) <= 40 else shown[:37] + '..."'


def _check_array(items: list[Any], noun: str) -> str | None:
    if not items:
        return f"payload is an empty array; send at least one {noun}"
    if len(items) > MAX_OBJECTS:
        return f"payload has {len(items)} objects; at most {MAX_OBJECTS} are accepted"
    return None


def _parse_item(item: Any, received_at: datetime,
                parse_object: ObjectParser[T]) -> T | Rejection:
    raw = _dump(item)
    if not isinstance(item, dict):
        return Rejection(None, ("each array item must be a JSON object",), raw)
    repeated = repeated_keys(item)
    if repeated:
        own = item.repeated if isinstance(item, _Repeated) else ()
        msg_id = None if "msg_id" in own else echo(item.get("msg_id"))
        return Rejection(msg_id, (_repeated_reason(repeated),), raw)
    try:
        return parse_object(item, received_at, raw)
    except Exception:  # last resort: a bug here must not take the gateway down
        return Rejection(echo(item.get("msg_id")), ("internal error validating this object",), raw)


def _check_msg_id(obj: dict[str, Any], errors: list[str]) -> None:
    msg_id = obj.get("msg_id")
    if "msg_id" not in obj:
        errors.append("msg_id is required")
    elif not isinstance(msg_id, str):
        errors.append("msg_id must be a string")
    elif not MSG_ID_RE.match(msg_id):
        errors.append("msg_id must be 1 to 64 characters from A-Z, a-z, 0-9 and . _ : -")


def _dump(item: Any) -> str:
    try:
        return json.dumps(item, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a number such as 1e400 overflowed to inf: keep raw valid JSON
        return json.dumps(_finite_copy(item), separators=(",", ":"))
    except RecursionError:
        return '"(nested too deeply to show)"'


def _finite_copy(item: Any) -> Any:
    if isinstance(item, float) and not math.isfinite(item):
        return str(item)
    if isinstance(item, list):
        return [_finite_copy(x) for x in item]
    if isinstance(item, dict):
        return {k: _finite_copy(v) for k, v in item.items()}
    return item
