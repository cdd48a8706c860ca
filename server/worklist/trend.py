"""Which way a series of readings is going, and its shape as a small line (pure).

For display only: a glance at the work list, never an alert. A series is "up" or "down"
when the mean of its newest third differs from the mean of its oldest third by more than
the series' own noise (one standard deviation) and 2 % of its level; otherwise "flat".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

Point = tuple[datetime, float]


def direction(points: Sequence[Point]) -> str:
    """Return "up", "down" or "flat" ("" with fewer than three readings)."""
    values = [v for _, v in points]
    if len(values) < 3:
        return ""
    third = max(1, len(values) // 3)
    old, new = statistics.fmean(values[:third]), statistics.fmean(values[-third:])
    noise = statistics.pstdev(values)
    if abs(new - old) <= max(noise, abs(old) * 0.02):
        return "flat"
    return "up" if new > old else "down"


def sparkline(points: Sequence[Point], start: datetime, end: datetime, width: int = 96,
              height: int = 24) -> str:
    """Return the SVG polyline `points` attribute of the series between start and end."""
    if not points:
        return ""
    values = [v for _, v in points]
    low, high = min(values), max(values)
    spread = (high - low) or 1.0
    span = (end - start).total_seconds() or 1.0
    pad = 2
    found = []
    for at, value in points:
        x = pad + (width - 2 * pad) * max(0.0, min(1.0, (at - start).total_seconds() / span))
        y = pad + (height - 2 * pad) * (1 - (value - low) / spread)
        found.append(f"{x:.1f},{y:.1f}")
    return " ".join(found)
