"""The simulator plan: one patient worsens at a time, in turn; sessions follow a compressed day."""

from __future__ import annotations

import random

import pytest
from telekol.device_gateway.simulator_plan import (
    MORE_OFTEN,
    SHAPE,
    WorseningPlan,
    pause,
    routine,
)
from telekol.server.demo.readings import FEELING_WORSE

HUBS = [f"hub-{n:04d}" for n in range(1, 9)]
PERIOD = 600.0


def plan(seed: int = 1) -> WorseningPlan:
    return WorseningPlan.shuffled(HUBS, PERIOD, delay=60, seed=seed)


def test_at_most_one_patient_is_worsening_at_any_moment() -> None:
    found = plan()
    for second in range(0, int(12 * PERIOD), 5):
        worsening = [hub for hub in HUBS if found.level(hub, second) > 0]
        assert len(worsening) <= 1, (second, worsening)


def test_every_patient_gets_a_turn_before_anyone_gets_a_second() -> None:
    found = plan()
    turns = [found.turn(60 + PERIOD * (n + 0.5)) for n in range(len(HUBS))]
    assert sorted(turn[0] for turn in turns if turn) == HUBS


def test_nobody_worsens_before_the_first_turn_or_in_the_quiet_end_of_a_turn() -> None:
    found = plan()
    quiet = 60 + PERIOD * (sum(SHAPE) + 0.05)
    assert found.turn(30) is None
    assert [hub for hub in HUBS if found.level(hub, quiet) > 0] == []


def test_a_turn_worsens_slowly_and_recovers() -> None:
    found = plan()
    hub = found.hubs[0]
    levels = [found.level(hub, 60 + PERIOD * share) for share in (0, 0.1, 0.2, 0.35, 0.6, 0.74)]
    assert levels[0] == 0 < levels[1] < levels[2] < levels[3] == max(levels)
    assert levels[3] > levels[4] > levels[5] > 0
    assert 0.55 <= max(levels) <= 1.0


def test_the_patients_named_first_take_the_first_turns() -> None:
    stable = frozenset(HUBS[4:])
    found = WorseningPlan.shuffled(HUBS, PERIOD, seed=2, first=stable)
    assert set(found.hubs[:4]) == stable and set(found.hubs[4:]) == set(HUBS[:4])


def test_the_same_seed_gives_the_same_turns() -> None:
    assert plan(3).hubs == plan(3).hubs
    assert {plan(s).hubs for s in range(5)} != {plan(3).hubs}


@pytest.mark.parametrize(("number", "slot", "weekday"), [
    (0, "morning", 0), (1, "evening", 0), (2, "morning", 1), (13, "evening", 6),
    (14, "morning", 0)])
def test_a_hub_alternates_mornings_and_evenings_through_a_compressed_week(
        number: int, slot: str, weekday: int) -> None:
    assert routine(number) == (slot, weekday)


def test_a_patient_who_feels_worse_measures_more_often() -> None:
    rng = random.Random(1)
    usual = [pause(300, 0.0, rng) for _ in range(50)]
    worse = [pause(300, FEELING_WORSE, rng) for _ in range(50)]
    assert min(usual) >= 240 and max(usual) <= 360
    assert max(worse) <= 360 / MORE_OFTEN
