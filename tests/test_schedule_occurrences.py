"""occurrences(): which scheduled measurements were due yesterday and today, per care plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from telekol.server.alerts.escalation import TIMEZONE
from telekol.server.alerts.scheduler import occurrences
from telekol.server.models import MeasurementSchedule

PATIENT = "p1"
START = datetime(2026, 3, 2, 8, 0, tzinfo=TIMEZONE)  # a Monday: plan day 0


def row(code: str = "spo2", due: str = "12:00", patient: str | None = PATIENT,
        **days) -> MeasurementSchedule:
    return MeasurementSchedule(id=f"{patient}-{code}-{due}-{sorted(days.items())}",
                               patient_id=patient, code=code, due_local=due, **days)


def evening_of(plan_day: int) -> datetime:
    """Return 23:00 local on the given plan day (everything of that day is due)."""
    day = START.date() + timedelta(days=plan_day)
    return datetime.combine(day, time(23), TIMEZONE).astimezone(UTC)


def due_today(rows: list[MeasurementSchedule], plan_day: int,
              started: datetime = START) -> list[tuple[str, str]]:
    """Return (code, HH:MM) due on the plan day itself, sorted."""
    now = evening_of(plan_day)
    today = now.astimezone(TIMEZONE).date()
    found = occurrences(rows, PATIENT, START - timedelta(days=30), now, started=started)
    return sorted((s.code, f"{s.due.astimezone(TIMEZONE):%H:%M}") for s in found
                  if s.due.astimezone(TIMEZONE).date() == today)


def test_a_row_expects_its_measurement_yesterday_and_today() -> None:
    now = evening_of(5)
    found = occurrences([row()], PATIENT, START, now)
    assert [s.due.astimezone(TIMEZONE) for s in found] == [
        datetime.combine(now.astimezone(TIMEZONE).date() - timedelta(days=d), time(12), TIMEZONE)
        for d in (1, 0)]
    assert {s.code for s in found} == {"spo2"}


def test_nothing_is_due_before_the_patient_was_enrolled() -> None:
    enrolled = datetime.combine(START.date(), time(13), TIMEZONE)
    now = evening_of(0)
    assert occurrences([row()], PATIENT, enrolled, now) == ()


def test_only_the_patients_own_rows_count_never_a_row_for_everyone() -> None:
    rows = [row(patient=None), row("weight", "08:00", patient=None),
            row("spo2", "09:00"), row("spo2", "17:00"), row("spo2", "10:00", patient="other")]
    assert due_today(rows, 3) == [("spo2", "09:00"), ("spo2", "17:00")]


@pytest.mark.parametrize(("weekdays", "plan_day", "expected"), [
    ([], 0, True),  # empty = every day
    ([0], 0, True),  # day 0 is a Monday
    ([0], 1, False),
    ([1, 3], 1, True),  # Tuesday
    ([1, 3], 3, True),  # Thursday
    ([5, 6], 4, False),  # Friday
])
def test_weekdays_limit_the_days(weekdays: list[int], plan_day: int, expected: bool) -> None:
    assert bool(due_today([row(weekdays=weekdays)], plan_day)) is expected


@pytest.mark.parametrize(("every_days", "from_day", "plan_day", "expected"), [
    (1, 0, 5, True),
    (2, 0, 0, True),
    (2, 0, 1, False),
    (2, 0, 4, True),
    (3, 0, 6, True),
    (3, 0, 7, False),
    (2, 14, 15, False),  # counted from from_day: 14, 16, 18, ...
    (2, 14, 16, True),
])
def test_every_n_days_counts_from_the_first_day_of_the_row(
        every_days: int, from_day: int, plan_day: int, expected: bool) -> None:
    entry = row(every_days=every_days, from_day=from_day)
    assert bool(due_today([entry], plan_day)) is expected


@pytest.mark.parametrize(("plan_day", "expected"), [
    (0, [("spo2", "09:00"), ("spo2", "17:00")]),
    (13, [("spo2", "09:00"), ("spo2", "17:00")]),
    (14, [("spo2", "12:00")]),
    (40, [("spo2", "12:00")]),
])
def test_an_intensive_first_two_weeks_then_less_often(plan_day: int,
                                                      expected: list[tuple[str, str]]) -> None:
    rows = [row(due="09:00", to_day=13), row(due="17:00", to_day=13), row(from_day=14)]
    assert due_today(rows, plan_day) == expected


def test_plan_days_count_from_the_local_date_the_episode_started() -> None:
    # 23:30 UTC on Sunday 1 March is 00:30 on Monday 2 March in Copenhagen: day 0 is Monday.
    started = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert started.astimezone(TIMEZONE).date() == date(2026, 3, 2)
    rows = [row(to_day=0)]
    assert due_today(rows, 0, started=started) == [("spo2", "12:00")]
    assert due_today(rows, 1, started=started) == []


def test_without_an_episode_start_days_count_from_enrolment() -> None:
    now = evening_of(1)
    found = occurrences([row(from_day=1)], PATIENT, START, now)
    assert [s.due.astimezone(TIMEZONE).date() for s in found] == [START.date() + timedelta(1)]


def test_two_rows_due_at_the_same_time_count_once() -> None:
    rows = [row(to_day=20), row(from_day=10)]
    assert due_today(rows, 12) == [("spo2", "12:00")]
