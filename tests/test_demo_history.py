"""The demo history plan: deterministic, in the contract's format, inside the limits when stable."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.triage import ThresholdSet, classify
from telekol.server.care.programme import programme
from telekol.server.demo.history import Upload, batched, history, merged
from telekol.server.demo.profiles import HISTORY_DAYS, PROFILES, profile_for
from telekol.server.demo.readings import ANSWERS, TIMEZONE
from telekol.server.device_messages.envelope import Rejection
from telekol.server.device_messages.measurements import Measurement, parse_measurements
from telekol.server.device_messages.questionnaire_responses import parse_questionnaire_responses

END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
STABLE = [cpr for cpr, p in PROFILES.items() if p.archetype == "stable"]


def objects(uploads: list[Upload]) -> list:
    """Return every parsed object of the uploads, failing on any rejection."""
    found = []
    for upload in uploads:
        for part in upload.parts:
            parse = (parse_questionnaire_responses if part.kind == ANSWERS
                     else parse_measurements)
            items = parse(part.payload, part.received_at)
            assert not [i for i in items if isinstance(i, Rejection)], items
            found += items
    return found


def readings(uploads: list[Upload]) -> list:
    return [r for m in objects(uploads) if isinstance(m, Measurement) for r in m.readings]


def test_the_same_seed_gives_the_same_history_byte_for_byte() -> None:
    profile = PROFILES["0911509997"]
    assert history(profile, "hub-0004", END, seed=7) == history(profile, "hub-0004", END, seed=7)
    assert history(profile, "hub-0004", END, seed=7) != history(profile, "hub-0004", END, seed=8)


def test_a_shorter_history_is_the_end_of_the_longer_one() -> None:
    profile = PROFILES["0101419996"]
    full, short = history(profile, "hub-0001", END), history(profile, "hub-0001", END, 10)
    assert full[-len(short):] == short


def test_every_upload_parses_with_the_gateways_own_parsers_and_is_not_late() -> None:
    for cpr in PROFILES:
        for upload in history(PROFILES[cpr], "hub-0001", END):
            for item in objects([upload]):
                assert timedelta(0) <= upload.at - item.taken_at < timedelta(minutes=10)


def test_the_history_covers_ninety_days_up_to_the_end_and_never_after() -> None:
    uploads = history(PROFILES["1812479991"], "hub-0006", END)
    days = {u.at.astimezone(TIMEZONE).date() for u in uploads}
    today = END.astimezone(TIMEZONE).date()
    assert days <= {today - timedelta(days=n) for n in range(HISTORY_DAYS)}
    assert len(days) > HISTORY_DAYS - 3  # now and then both sessions of a day are skipped
    assert max(u.at for u in uploads) <= END
    assert [u.at for u in uploads] == sorted(u.at for u in uploads)


@pytest.mark.parametrize("cpr", list(PROFILES))
def test_a_patient_has_four_to_seven_readings_a_day(cpr: str) -> None:
    found = objects(history(PROFILES[cpr], "hub-0001", END))
    per_day = sum(len(getattr(o, "readings", ())) or 1 for o in found) / HISTORY_DAYS
    assert 4 <= per_day <= 7


@pytest.mark.parametrize("cpr", [*STABLE, "0102439001", "1711509123"])
def test_a_stable_patients_readings_stay_inside_the_programme_limits(cpr: str) -> None:
    limits = {code: ThresholdSet(code, **values)
              for code, values in programme("copd").thresholds.items()}
    for seed in (1, 2, 3):
        for reading in readings(history(profile_for(cpr), "hub-0001", END, seed=seed)):
            if reading.code in limits:
                assert classify(reading.value, limits[reading.code]).severity == "green", reading


def test_a_stable_patient_mostly_says_no_in_the_symptom_diary() -> None:
    answers = Counter(value for cpr in STABLE for item in objects(
        history(PROFILES[cpr], "hub-0001", END)) if getattr(item, "questionnaire", "")
        == "copd-symptoms" for _, value in item.answers)
    assert answers[True] < 0.02 * answers[False]


def test_the_exacerbation_shows_in_spo2_two_weeks_ago() -> None:
    spo2 = [(END - m.taken_at, r.value) for m in objects(history(
        PROFILES["0911509997"], "hub-0004", END)) if isinstance(m, Measurement)
        for r in m.readings if r.code == "spo2"]

    def mean(first: int, last: int) -> float:
        values = [v for ago, v in spo2 if timedelta(days=first) <= ago < timedelta(days=last)]
        return sum(values) / len(values)

    assert mean(12, 15) < mean(30, 60) - 4
    assert mean(0, 2) > mean(30, 60) - 1


def test_extra_patients_history_can_be_batched_per_hour_without_losing_a_part() -> None:
    uploads = merged(history(profile_for(f"01024{n}9001"), f"hub-{n:04d}", END, 3, light=True)
                     for n in range(10, 40))
    batches = list(batched(uploads, timedelta(hours=1), 7))
    assert sorted(p.payload for b in batches for p in b.parts) == sorted(
        p.payload for u in uploads for p in u.parts)
    assert all(len(b.parts) <= 7 and b.at == max(p.received_at for p in b.parts)
               for b in batches)
    assert not [b for b in batches for p in b.parts if b.at - p.received_at >= timedelta(hours=1)]
    assert {r.code for r in readings(uploads)} == {"spo2", "pulse"}
    assert json.loads(uploads[0].parts[0].payload)
