"""The patient's own reference values over time, as the relative rules compare with them (pure).

For every reading of SpO2, FEV1 or FVC: the mean of the previous `baseline_days` days, once
there are enough readings (as `baseline.spo2_below_baseline` and `baseline.spirometry`). For
every weight: the lowest weight of the previous `weight_days` days (as `weight.weight_gain`).
Charts draw these as the personal baseline; the windows and counts are the rules' own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from telekol.server.alerts.rules.baseline import SPIROMETRY
from telekol.server.alerts.rules.parameters import RuleParameters
from telekol.server.alerts.rules.snapshot import Reading

MEAN_CODES = ("spo2", *SPIROMETRY)
LOWEST_CODES = ("weight",)
BASELINE_CODES = (*MEAN_CODES, *LOWEST_CODES)


@dataclass(frozen=True)
class BaselinePoint:
    """What the rules compared the reading taken at `taken_at` with."""

    taken_at: datetime
    value: float


def window_days(code: str, parameters: RuleParameters) -> float:
    """Return how many days back the baseline of `code` reaches (the rule's window)."""
    if code in LOWEST_CODES:
        return parameters.weight_days.value
    return int(parameters.baseline_days.value)  # whole days, as baseline._window counts them


def personal_baseline(code: str, readings: Iterable[Reading], parameters: RuleParameters,
                      start: datetime, complete_from: datetime | None = None,
                      ) -> list[BaselinePoint]:
    """Return the baseline at each reading of `code` taken from `start`, oldest first.

    `complete_from` is the earliest instant the readings are known to be complete from (they
    were cut off before it); readings whose window reaches further back get no baseline.
    """
    if code not in BASELINE_CODES:
        return []
    ordered = sorted((r for r in readings if r.code == code), key=lambda r: r.taken_at)
    times = [r.taken_at for r in ordered]
    values = [r.value for r in ordered]
    span = timedelta(days=window_days(code, parameters))
    windows = [(bisect_left(times, t - span), bisect_left(times, t)) for t in times]
    if code in LOWEST_CODES:
        found = _lowest(values, windows, needed=1)
    else:
        found = _mean(values, windows, needed=max(2, int(parameters.baseline_min_readings.value)))
    return [BaselinePoint(t, value) for t, value in zip(times, found, strict=True)
            if value is not None and t >= start
            and (complete_from is None or t - span >= complete_from)]


def _mean(values: list[float], windows: list[tuple[int, int]], needed: int,
          ) -> list[float | None]:
    """Return the mean of each window [lo, hi) holding at least `needed` values."""
    sums = [0.0, *accumulate(values)]  # a running total keeps long histories linear
    return [(sums[hi] - sums[lo]) / (hi - lo) if hi - lo >= needed else None
            for lo, hi in windows]


def _lowest(values: list[float], windows: list[tuple[int, int]], needed: int,
            ) -> list[float | None]:
    """Return the lowest value of each window [lo, hi); both ends only move forwards."""
    found: list[float | None] = []
    candidates: deque[int] = deque()  # indexes of rising values, the window's lowest first
    added = 0
    for lo, hi in windows:
        for index in range(added, hi):
            while candidates and values[candidates[-1]] >= values[index]:
                candidates.pop()
            candidates.append(index)
        added = max(added, hi)
        while candidates and candidates[0] < lo:
            candidates.popleft()
        found.append(values[candidates[0]] if hi - lo >= needed and candidates else None)
    return found
