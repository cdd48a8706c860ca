"""The input every rule reads: one frozen snapshot of a patient's readings and settings."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from telekol.server.alerts.rules.parameters import RuleParameters, default_parameters
from telekol.server.alerts.triage import ThresholdSet


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


class ReadingIndex:
    """Readings in arrival order, by code in `taken_at` order, and each device's uploads.

    Kept up to date one reading at a time (a binary-search insert), so a caller that keeps a
    patient's history between messages (the gateway) never sorts it again: a hub's backlog
    costs in proportion to its length, not its square.
    """

    def __init__(self, readings: Iterable[Reading] = ()) -> None:
        self.recent: list[Reading] = []
        self.by_code: dict[str, tuple[list[datetime], list[Reading]]] = {}
        # device id -> (upload instants in order, the newest reading of each upload)
        self.uploads: dict[str, tuple[list[datetime], dict[datetime, Reading]]] = {}
        for reading in readings:
            self.add(reading)

    def add(self, reading: Reading) -> None:
        """Index one more reading (ties keep arrival order, as a stable sort would)."""
        self.recent.append(reading)
        times, readings = self.by_code.setdefault(reading.code, ([], []))
        # Instants in UTC: comparing datetimes of one time zone object is many times faster
        # than across zones, and devices send their own offsets.
        taken = reading.taken_at.astimezone(UTC)
        at = bisect_right(times, taken)
        times.insert(at, taken)
        readings.insert(at, reading)
        self._upload(reading)

    def since(self, start: datetime) -> ReadingIndex:
        """Return a copy holding only the readings taken at or after `start`."""
        kept = ReadingIndex()
        kept.recent = [r for r in self.recent if r.taken_at >= start]
        start = start.astimezone(UTC)
        for code, (times, readings) in self.by_code.items():
            first = bisect_left(times, start)
            if first < len(times):
                kept.by_code[code] = (times[first:], readings[first:])
        if len(kept.recent) == len(self.recent):
            kept.uploads = {d: (list(k), dict(n)) for d, (k, n) in self.uploads.items()}
        else:
            for reading in kept.recent:
                kept._upload(reading)
        return kept

    def _upload(self, reading: Reading) -> None:
        # The newest reading of each upload, the first of equal times winning, as a scan of
        # the readings in arrival order would find it.
        if reading.device_id is None:
            return
        keys, newest = self.uploads.setdefault(reading.device_id, ([], {}))
        current = newest.get(reading.received_at)
        if current is None:
            keys.insert(bisect_right(keys, reading.received_at), reading.received_at)
        if current is None or reading.taken_at > current.taken_at:
            newest[reading.received_at] = reading


@dataclass(frozen=True)
class PatientContext:
    """A patient's recent readings, limits, rule parameters, schedule and devices at `now`.

    A context lives for one evaluation: a caller passing its own `index` (kept across
    messages) must not add to it while the rules run.
    """

    patient_id: str
    now: datetime
    recent: Sequence[Reading] = ()  # about the last 14 days, any order
    thresholds: Mapping[str, ThresholdSet] = field(default_factory=dict)
    parameters: RuleParameters = field(default_factory=default_parameters)
    hypercapnic: bool = False  # set by a clinician: NEWS2 SpO2 Scale 2, target 88-92 %
    schedule: tuple[ScheduledMeasurement, ...] = ()
    devices: tuple[DeviceState, ...] = ()
    timezone: str = "Europe/Copenhagen"  # the patient's calendar days ("since yesterday")
    index: ReadingIndex | None = field(default=None, compare=False, repr=False)

    def history(self, code: str, start: datetime, end: datetime) -> list[Reading]:
        """Return readings of `code` taken in [start, end), oldest first."""
        times, readings = self._index.by_code.get(code, ([], []))
        return readings[bisect_left(times, start.astimezone(UTC)):
                        bisect_left(times, end.astimezone(UTC))]

    def nearest(self, code: str, moment: datetime, start: datetime,
                end: datetime) -> Reading | None:
        """Return the reading of `code` in [start, end) closest in time to `moment`: of equal
        distances the earliest, of equal times the first that arrived."""
        times, readings = self._index.by_code.get(code, ([], []))
        moment, start, end = (t.astimezone(UTC) for t in (moment, start, end))
        low, high = bisect_left(times, start), bisect_left(times, end)
        at = max(low, min(high, bisect_left(times, moment)))  # first taken at or after
        if at < high and times[at] == moment:
            return readings[at]
        before = bisect_left(times, times[at - 1], low, at) if at > low else None
        after = at if at < high else None
        if before is None or (after is not None and
                              times[after] - moment < moment - times[before]):
            return None if after is None else readings[after]
        return readings[before]

    def uploads(self, device_id: str, until: datetime, last: int | None = None) -> list[Reading]:
        """Return the newest reading of each of the device's uploads received up to `until`
        (the `last` of them; all when None), in the order they were received. An upload is
        the readings received at one instant."""
        keys, newest = self._index.uploads.get(device_id, ([], {}))
        end = bisect_right(keys, until)
        first = 0 if last is None else max(0, end - last)
        return [newest[key] for key in keys[first:end]]

    @cached_property
    def _index(self) -> ReadingIndex:
        # Indexed once per snapshot: rules look up windows for every reading, and a hub
        # uploading a backlog would otherwise make that quadratic.
        return self.index if self.index is not None else ReadingIndex(self.recent)

    def local(self, moment: datetime) -> datetime:
        """Return `moment` in the patient's time zone (calendar days, times in reasons)."""
        return moment.astimezone(ZoneInfo(self.timezone))
