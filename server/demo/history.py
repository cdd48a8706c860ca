"""A demo patient's past as their hub would have uploaded it (pure, seeded).

Two sessions a day at the patient's own times (server/demo/profiles.py), each uploaded by
the hub just after its last instrument, as the contract's payloads (one array per
topic). The same seed and end give the same history, byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import groupby

from telekol.server.demo.profiles import HISTORY_DAYS, Profile
from telekol.server.demo.readings import TIMEZONE, session

SLOTS = ("morning", "evening")
JITTER_MINUTES = (-20, 25)  # how far a session strays from the patient's habit


@dataclass(frozen=True)
class Part:
    """One payload a hub published: on which topic kind, and when it arrived."""

    device_id: str
    kind: str  # demo_readings.MEASUREMENTS | demo_readings.ANSWERS
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Upload:
    """What the platform received together; `at` is when the last part arrived."""

    at: datetime
    parts: tuple[Part, ...]


def history(profile: Profile, device_id: str, end: datetime, days: int = HISTORY_DAYS,
            seed: int = 1, *, light: bool = False) -> list[Upload]:
    """Return the hub's uploads of the last `days` local days up to `end`, oldest first.

    `light`: the morning oximetry alone (SpO2 and pulse), for many extra patients.
    """
    today = end.astimezone(TIMEZONE).date()
    found = []
    for back in range(days - 1, -1, -1):
        date = today - timedelta(days=back)
        for slot in SLOTS[:1] if light else SLOTS:
            rng = random.Random(f"{seed}|{profile.cpr}|{date.isoformat()}|{slot}")
            habit = profile.morning if slot == "morning" else profile.evening
            taken = datetime.combine(date, time(), TIMEZONE) + timedelta(
                minutes=habit + rng.randint(*JITTER_MINUTES))
            day = HISTORY_DAYS - (end - taken) / timedelta(days=1)
            messages = session(profile, slot, taken, date.weekday(), day, 0.0, rng,
                               f"hist-{date:%Y%m%d}-{slot[:2]}", light=light)
            # The hub uploads a little after the last instrument (a minute apart).
            arrived = taken + timedelta(minutes=len(messages) - 1, seconds=rng.randint(20, 50))
            if messages and arrived <= end:
                found.append(Upload(arrived, _parts(device_id, messages, arrived)))
    return found


def merged(histories: Iterable[list[Upload]]) -> list[Upload]:
    """Return several hubs' uploads in the order they arrived."""
    return sorted((u for h in histories for u in h), key=lambda u: u.at)


def batched(uploads: Iterable[Upload], window: timedelta, size: int) -> Iterator[Upload]:
    """Join uploads that arrived in the same `window` (at most `size` parts each) into one.

    For many extra patients: storing a window's uploads in one transaction is far faster,
    at the price that their alerts carry the end of the window as their time.
    """
    ordered = sorted(uploads, key=lambda u: u.at)
    for _, group in groupby(ordered, key=lambda u: int(u.at.timestamp() // window.total_seconds())):
        parts = [part for upload in group for part in upload.parts]
        for start in range(0, len(parts), size):
            chunk = tuple(parts[start:start + size])
            yield Upload(max(p.received_at for p in chunk), chunk)


def _parts(device_id: str, messages: list[tuple[str, dict]], arrived: datetime,
           ) -> tuple[Part, ...]:
    by_kind: dict[str, list[dict]] = {}
    for kind, body in messages:
        by_kind.setdefault(kind, []).append(body)
    return tuple(Part(device_id, kind, json.dumps(bodies[0] if len(bodies) == 1 else bodies,
                                                  ensure_ascii=False).encode(), arrived)
                 for kind, bodies in by_kind.items())
