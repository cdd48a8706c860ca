"""When the demo hubs measure and who is worsening (pure, seeded).

Each hub runs a measuring session every `interval` seconds, alternating its patient's
morning and evening routine (server/demo/readings.py): two sessions make a compressed day
and fourteen a compressed week, while `taken_at` stays the real time. A patient who feels
worse measures more often. One patient at a time worsens: every `period` the next patient
in a seeded order (the `first` ones first) slides into a worsening (ramp, hold and recovery
as SHAPE shares of the period, peak between PEAKS) and back; for the rest of the period
nobody worsens. So a demo left running shows mostly green, and now and then one patient's
worsening and its alerts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from telekol.server.demo.profiles import Worsening
from telekol.server.demo.readings import FEELING_WORSE

SHAPE = (0.30, 0.15, 0.30)  # ramp, hold, recovery as shares of the period; then quiet
PEAKS = (0.55, 1.0)  # a mild worsening (cough, breathless, SpO2 a few points down) to a full one
SLOTS = ("morning", "evening")
MORE_OFTEN = 4  # a patient who feels worse measures this many times as often
JITTER = (0.8, 1.2)  # hubs drift apart instead of measuring in lockstep
# The spirometer once a compressed week (daily while worse), not three times as in the
# history: the FEV1 rule (more than 1.645 SD below the 7-day mean) fires by chance on a few
# per cent of a stable patient's readings, and compressed days would multiply those alarms.
LIVE_FEV1_DAYS = (0,)


@dataclass(frozen=True)
class WorseningPlan:
    """Whose turn it is to worsen, `elapsed` seconds after the simulator started."""

    hubs: tuple[str, ...]  # in the order they take turns
    period: float  # seconds per turn
    delay: float = 60.0  # seconds before the first turn
    seed: int = 1

    @classmethod
    def shuffled(cls, hubs: list[str], period: float, delay: float = 60.0, seed: int = 1,
                 first: frozenset[str] = frozenset()) -> WorseningPlan:
        """Return a plan taking the hubs in a seeded random order, those in `first` first."""
        rng = random.Random(seed)
        early, late = sorted(h for h in hubs if h in first), sorted(h for h in hubs
                                                                     if h not in first)
        rng.shuffle(early)
        rng.shuffle(late)
        return cls(tuple(early + late), period, delay, seed)

    def turn(self, elapsed: float) -> tuple[str, Worsening] | None:
        """Return the hub whose turn covers `elapsed` and its worsening, or None before."""
        if not self.hubs or elapsed < self.delay:
            return None
        number = int((elapsed - self.delay) // self.period)
        start = self.delay + number * self.period
        ramp, hold, recover = (share * self.period for share in SHAPE)
        peak = random.Random(f"{self.seed}|{number}").uniform(*PEAKS)
        return self.hubs[number % len(self.hubs)], Worsening(start, ramp, hold, recover, peak)

    def level(self, hub: str, elapsed: float) -> float:
        """Return how far `hub`'s patient is into a worsening (0 when it is not their turn)."""
        found = self.turn(elapsed)
        return found[1].level(elapsed) if found is not None and found[0] == hub else 0.0


def routine(session_number: int) -> tuple[str, int]:
    """Return the slot and the weekday (Monday = 0) of a hub's `session_number`-th session."""
    return SLOTS[session_number % 2], session_number // 2 % 7


def pause(interval: float, level: float, rng: random.Random) -> float:
    """Return the seconds until a hub's next session; shorter while its patient feels worse."""
    seconds = interval / MORE_OFTEN if level >= FEELING_WORSE else interval
    return seconds * rng.uniform(*JITTER)
