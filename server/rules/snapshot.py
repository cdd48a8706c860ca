"""The input every rule reads: one frozen snapshot of a patient's readings and settings."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from telekol.server.rules.parameters import RuleParameters, default_parameters
from telekol.server.triage import ThresholdSet


@dataclass(frozen=True)
class Reading:
    """One value as received: what, when it was taken, when it arrived, buffered or not."""

    code: str  # fhir/codes.py reading code, "cat", or a symptom linkId
    value: float
    unit: str
    taken_at: datetime
    received_at: datetime
    late: bool = False  # uploaded later from a hub's buffer
    device_id: str | None = None


@dataclass(frozen=True)
class ScheduledMeasurement:
    """A measurement the care plan expects by `due`."""

    code: str
    due: datetime


@dataclass(frozen=True)
class DeviceState:
    """What the platform knows about one of the patient's devices."""

    device_id: str
    last_seen_at: datetime | None = None
    battery_percent: float | None = None
    rejections_in_a_row: int = 0


@dataclass(frozen=True)
class PatientContext:
    """A patient's recent readings, limits, rule parameters, schedule and devices at `now`."""

    patient_id: str
    now: datetime
    recent: tuple[Reading, ...] = ()  # about the last 14 days, any order
    thresholds: Mapping[str, ThresholdSet] = field(default_factory=dict)
    parameters: RuleParameters = field(default_factory=default_parameters)
    hypercapnic: bool = False  # set by a clinician: NEWS2 SpO2 Scale 2, target 88-92 %
    schedule: tuple[ScheduledMeasurement, ...] = ()
    devices: tuple[DeviceState, ...] = ()
    timezone: str = "Europe/Copenhagen"  # the patient's calendar days ("since yesterday")

    def history(self, code: str, start: datetime, end: datetime) -> list[Reading]:
        """Return readings of `code` taken in [start, end), oldest first."""
        times, readings = self._by_code.get(code, ([], []))
        return readings[bisect_left(times, start):bisect_left(times, end)]

    @cached_property
    def _by_code(self) -> dict[str, tuple[list[datetime], list[Reading]]]:
        # Indexed once per snapshot: rules look up windows for every reading, and a hub
        # uploading a backlog would otherwise make that quadratic.
        groups: dict[str, list[Reading]] = {}
        for reading in sorted(self.recent, key=lambda r: r.taken_at):
            groups.setdefault(reading.code, []).append(reading)
        return {code: ([r.taken_at for r in rs], rs) for code, rs in groups.items()}

    def local(self, moment: datetime) -> datetime:
        """Return `moment` in the patient's time zone (calendar days, times in reasons)."""
        return moment.astimezone(ZoneInfo(self.timezone))
