"""Prove that every mapper's output is valid FHIR R4B, once, instead of once per reading.

The gateway stores readings without running fhir.resources on each (0.6-0.8 ms a
message): the Observations and QuestionnaireResponses it stores are made by a handful of
pure mappers from values the parsers have already checked. This module runs those mappers
on a table of inputs that reaches every branch (every measurement type at both ends of its
plausible range and with a fraction, every triage colour and direction, offsets and
fractional seconds in `taken_at`, every questionnaire at its lowest and highest answers)
through the same code the Recorder uses, and validates each result. It runs in the tests
(tests/test_mapper_check.py) and when a gateway or web process starts (`ensure_valid`):
a mapper changed into producing invalid FHIR stops the process before it stores anything.
What a door adds to a mapped resource (a clinician as author, a client's identifier) is
validated per request; `POST /fhir` validates its untrusted input in full.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from typing import Any

import orjson
from telekol.fhir.codes import MEASUREMENT_TYPES, plausible_range
from telekol.fhir.observation import observations_for
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.fhir.validation import InvalidResource, validate_resource
from telekol.server.alerts.triage import ThresholdSet
from telekol.server.device_messages.measurements import Measurement, parse_measurements
from telekol.server.device_messages.questionnaire_responses import (
    QuestionnaireAnswers,
    parse_questionnaire_responses,
)
from telekol.server.ingest.observation_rows import observation_resource, triage_readings
from telekol.server.ingest.questionnaires import response_rows

NOW = datetime(2026, 11, 25, 7, 0, 0, 123000, tzinfo=UTC)
TAKEN = ("2026-11-25T07:31:00+01:00", "2026-11-25T06:31:00Z", "2026-11-25T06:31:00.5-00:30")
# Limits that make any value green, or red or yellow on either side (red_low, yellow_low,
# yellow_high, red_high).
Bounds = tuple[float | None, float | None, float | None, float | None]
_LIMITS: dict[str, Bounds | None] = {
    "none": None, "green": (0.0, None, None, None), "red low": (1e9, None, None, None),
    "red high": (None, None, None, -1e9), "yellow low": (None, 1e9, None, None),
    "yellow high": (None, None, -1e9, None),
}
_lock = threading.Lock()
_proven = False


def observation_samples() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (what, resource) for every measurement type, range end and triage colour."""
    ids = count()
    for code in MEASUREMENT_TYPES:
        for taken in TAKEN:
            for values in _values(code):
                for name, bounds in _LIMITS.items():
                    yield from _observations(code, values, taken, name, bounds, ids)


def response_samples() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (what, resource) for every questionnaire at its lowest and highest answers."""
    ids = count()
    for kind, definition in QUESTIONNAIRES.items():
        for lowest in (True, False):
            answer: int | bool = (not lowest if definition.answer_type == "boolean"
                                  else (0 if lowest else 5))
            body = {"msg_id": f"check-{kind}", "taken_at": TAKEN[0], "questionnaire": kind,
                    "answers": {item.link_id: answer for item in definition.items}}
            [parsed] = parse_questionnaire_responses(orjson.dumps(body), NOW)
            assert isinstance(parsed, QuestionnaireAnswers), parsed
            for device in ("hub-check", None):
                rows = response_rows(parsed, patient_id="patient-check", device_id=device,
                                     received_at=NOW, now=NOW, new_id=lambda: f"id{next(ids)}")
                for resource in rows.resources:
                    yield f"{kind} {'lowest' if lowest else 'highest'} answers", resource


def check_all() -> int:
    """Validate every sample; return how many; raise InvalidResource naming the first bad."""
    checked = 0
    for what, resource in [*observation_samples(), *response_samples()]:
        try:
            validate_resource(resource)
        except InvalidResource as error:
            raise InvalidResource(f"mapper output for {what} is not valid FHIR: {error}") from None
        checked += 1
    return checked


def ensure_valid() -> None:
    """Prove the mappers once per process (start-up of the gateway and the web server)."""
    global _proven
    with _lock:
        if not _proven:
            check_all()
            _proven = True


def _values(code: str) -> list[list[dict[str, Any]]]:
    """Return readings at both ends of the plausible range and one with a fraction."""
    if code == "bp":
        sys_low, sys_high = plausible_range("bp_sys")
        dia_low, _ = plausible_range("bp_dia")
        return [[{"code": "bp_sys", "value": sys_high}, {"code": "bp_dia", "value": dia_low}],
                [{"code": "bp_sys", "value": sys_low + 1}, {"code": "bp_dia", "value": dia_low}]]
    low, high = plausible_range(code)
    return [[{"code": code, "value": value}] for value in (low, high, round(low + 1.25, 2))]


def _observations(code: str, readings: list[dict[str, Any]], taken: str, name: str,
                  bounds: Bounds | None, ids: Iterator[int],
                  ) -> Iterator[tuple[str, dict[str, Any]]]:
    body = {"msg_id": f"check-{code}", "taken_at": taken, "readings": readings}
    [measurement] = parse_measurements(orjson.dumps(body), NOW)
    assert isinstance(measurement, Measurement), measurement
    limits = {r["code"]: ThresholdSet(r["code"], *bounds, "check", NOW)
              for r in readings if bounds is not None}
    triage, _ = triage_readings(measurement.readings, limits.get)
    for type_code, mapped in observations_for(measurement, patient_id="patient-check",
                                              device_id="hub-check", issued=NOW, triage=triage):
        what = f"{type_code} {readings} taken {taken}, limits {name}"
        yield what, observation_resource(f"id{next(ids)}", type_code, NOW, mapped)
