"""What a shared care plan says (pure): schedules, thresholds, relative limits, self-care,
goals and notes; validated with clear messages, compared section by section, and mapped to
the rows the rules read.

Measurement codes are the gateway's (telekol.fhir.codes); threshold codes are reading codes
(blood pressure as bp_sys and bp_dia); relative limits are RuleParameters names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from telekol.fhir.codes import MEASUREMENT_TYPES, READING_CODES, plausible_range
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.server.alerts.rules.parameters import (
    UnknownParameter,
    default_parameters,
    merge_parameters,
)

MEASUREMENT_CODES = tuple(MEASUREMENT_TYPES)  # what a schedule can ask to be measured
QUESTIONNAIRE_CODES = tuple(q.type_code for q in QUESTIONNAIRES.values())  # cat, symptoms
THRESHOLD_CODES = READING_CODES
LIMITS = ("red_low", "yellow_low", "yellow_high", "red_high")  # in the order they must rise
SECTIONS = ("schedules", "thresholds", "relative", "self_care", "goals", "notes")
RULE_SECTIONS = ("thresholds", "relative")  # only the treatment-responsible prescriber
_TIME_RE = re.compile(r"\A([01]\d|2[0-3]):[0-5]\d\Z")
MAX_TEXT = 2000


class InvalidCarePlan(ValueError):
    """Care plan content that does not validate; `errors` lists each problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ScheduleEntry(_Strict):
    """When a measurement or questionnaire is expected (plan days count from the episode start)."""

    code: str
    kind: Literal["measurement", "questionnaire"] = "measurement"
    times: list[str] = Field(min_length=1, max_length=12)
    weekdays: list[int] = Field(default_factory=list, max_length=7)  # 0 = Monday; [] = daily
    every_days: int = Field(default=1, ge=1, le=365)
    from_day: int = Field(default=0, ge=0, le=3650)
    to_day: int | None = Field(default=None, ge=0, le=3650)

    @field_validator("times")
    @classmethod
    def _times(cls, times: list[str]) -> list[str]:
        bad = [t for t in times if not _TIME_RE.match(t)]
        if bad:
            raise ValueError(f"times must be HH:MM (00:00-23:59), not {', '.join(bad)}")
        if len(set(times)) != len(times):
            raise ValueError("times must not repeat")
        return sorted(times)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in days) or len(set(days)) != len(days):
            raise ValueError("weekdays must be distinct numbers 0 (Monday) to 6 (Sunday)")
        return sorted(days)

    @model_validator(mode="after")
    def _code_and_days(self) -> ScheduleEntry:
        known = MEASUREMENT_CODES if self.kind == "measurement" else QUESTIONNAIRE_CODES
        if self.code not in known:
            raise ValueError(f"{self.kind} code {self.code!r} is not one of: {', '.join(known)}")
        if self.to_day is not None and self.to_day < self.from_day:
            raise ValueError(f"to_day {self.to_day} is before from_day {self.from_day}")
        return self


class Limits(_Strict):
    """Red and yellow limits of one reading code; each may be absent (null)."""

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    def present(self) -> list[tuple[str, float]]:
        """Return the limits that are set, lowest first."""
        return [(name, value) for name in LIMITS if (value := getattr(self, name)) is not None]

    def check(self, code: str) -> Limits:
        """Raise ValueError unless the limits are set, plausible for `code` and rising."""
        present = self.present()
        if not present:
            raise ValueError("at least one limit must be set")
        low, high = plausible_range(code)
        for name, value in present:
            if not low <= value <= high:
                raise ValueError(f"{name} {value:g} is outside the plausible range "
                                 f"{low:g}-{high:g} of {code}")
        for (name, value), (next_name, next_value) in pairwise(present):
            if value >= next_value:
                raise ValueError(f"{name} {value:g} must be below {next_name} {next_value:g}")
        return self


class SelfCare(_Strict):
    """What the patient does in each state (green, yellow, red)."""

    green: str = Field(default="", max_length=MAX_TEXT)
    yellow: str = Field(default="", max_length=MAX_TEXT)
    red: str = Field(default="", max_length=MAX_TEXT)


class CarePlanContent(_Strict):
    """The whole content of one care plan version."""

    schedules: list[ScheduleEntry] = Field(default_factory=list, max_length=40)
    thresholds: dict[str, Limits] = Field(default_factory=dict)
    relative: dict[str, float] = Field(default_factory=dict)
    self_care: SelfCare = Field(default_factory=SelfCare)
    goals: list[str] = Field(default_factory=list, max_length=20)
    notes: str = Field(default="", max_length=5 * MAX_TEXT)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, thresholds: dict[str, Limits]) -> dict[str, Limits]:
        unknown = sorted(set(thresholds) - set(THRESHOLD_CODES))
        if unknown:
            raise ValueError(f"no thresholds for {', '.join(unknown)}; codes are: "
                             f"{', '.join(THRESHOLD_CODES)}")
        errors = []
        for code, limits in thresholds.items():
            try:
                limits.check(code)
            except ValueError as exc:
                errors.append(f"{code}: {exc}")
        if errors:
            raise ValueError("; ".join(errors))
        return {code: thresholds[code] for code in THRESHOLD_CODES if code in thresholds}

    @field_validator("relative")
    @classmethod
    def _relative(cls, relative: dict[str, float]) -> dict[str, float]:
        try:
            merge_parameters(default_parameters(), relative)
        except UnknownParameter as exc:
            raise ValueError(exc.args[0]) from None
        negative = sorted(name for name, value in relative.items() if value < 0)
        if negative:
            raise ValueError(f"must not be negative: {', '.join(negative)}")
        return dict(sorted(relative.items()))

    @field_validator("goals")
    @classmethod
    def _goals(cls, goals: list[str]) -> list[str]:
        if any(len(goal) > MAX_TEXT for goal in goals):
            raise ValueError(f"a goal must be at most {MAX_TEXT} characters")
        return [goal for goal in goals if goal]


def parse_content(data: Any) -> CarePlanContent:
    """Validate care plan content; raise InvalidCarePlan listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidCarePlan(["content must be a JSON object"])
    try:
        return CarePlanContent.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidCarePlan([_message(error) for error in exc.errors()]) from None


def parse_limits(code: str, data: Any) -> Limits:
    """Validate the limits proposed for one reading code; raise InvalidCarePlan."""
    if code not in THRESHOLD_CODES:
        raise InvalidCarePlan([f"measurement {code!r} is not one of: {', '.join(THRESHOLD_CODES)}"])
    if not isinstance(data, Mapping):
        raise InvalidCarePlan(["the proposed limits must be a JSON object"])
    try:
        return Limits.model_validate(dict(data)).check(code)
    except ValidationError as exc:
        raise InvalidCarePlan([_message(error) for error in exc.errors()]) from None
    except ValueError as exc:
        raise InvalidCarePlan([f"{code}: {exc}"]) from None


def as_json(content: CarePlanContent) -> dict[str, Any]:
    """Return the content as stored: every section present, limits without nulls kept."""
    return content.model_dump(mode="json")


def _message(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    text = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


def changed_sections(old: CarePlanContent, new: CarePlanContent) -> list[str]:
    """Return the sections that differ, in SECTIONS order."""
    before, after = as_json(old), as_json(new)
    return [name for name in SECTIONS if before[name] != after[name]]


def summarize(old: CarePlanContent, new: CarePlanContent) -> str:
    """Describe what changed, section by section (thresholds value by value)."""
    parts = []
    for section in changed_sections(old, new):
        if section == "thresholds":
            parts.extend(_threshold_changes(old.thresholds, new.thresholds))
        elif section == "relative":
            parts.extend(_relative_changes(old.relative, new.relative))
        else:
            parts.append(f"{section.replace('_', '-')} changed")
    return "; ".join(parts) or "no changes"


def _threshold_changes(old: Mapping[str, Limits], new: Mapping[str, Limits]) -> list[str]:
    found = []
    for code in THRESHOLD_CODES:
        before, after = old.get(code, Limits()), new.get(code, Limits())
        steps = [f"{name} {_num(getattr(before, name))} → {_num(getattr(after, name))}"
                 for name in LIMITS if getattr(before, name) != getattr(after, name)]
        if steps:
            found.append(f"{code} {', '.join(steps)}")
    return found


def _relative_changes(old: Mapping[str, float], new: Mapping[str, float]) -> list[str]:
    return [f"{name} {_num(old.get(name))} → {_num(new.get(name))}"
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class ScheduleRow:
    """One MeasurementSchedule row a plan asks for: a code at one local time."""

    code: str
    kind: str
    due_local: str
    weekdays: tuple[int, ...]
    every_days: int
    from_day: int
    to_day: int | None


@dataclass(frozen=True)
class LiveRows:
    """What the rules read, as a plan version says: limits, overrides and schedule rows."""

    thresholds: dict[str, Limits]
    overrides: dict[str, float]
    schedules: tuple[ScheduleRow, ...]


def live_rows(content: CarePlanContent) -> LiveRows:
    """Map plan content to the rules' rows: one schedule row per code and time."""
    rows = tuple(ScheduleRow(entry.code, entry.kind, due, tuple(entry.weekdays),
                             entry.every_days, entry.from_day, entry.to_day)
                 for entry in content.schedules for due in entry.times)
    return LiveRows(dict(content.thresholds), dict(content.relative), rows)
