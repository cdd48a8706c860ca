"""CAT: a rise of at least the MCID since the previous questionnaire."""

from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules import (
    PatientContext,
    Reading,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.cat import cat_rise

NOW = datetime(2025, 11, 4, 7, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def reading(value: float, at: datetime = NOW) -> Reading:
    return Reading("cat", value, "{score}", at, at)


@pytest.mark.parametrize(("history", "today", "overrides", "alerts"), [
    ((12,), 13, {}, False),  # +1 is below the MCID
    ((12,), 14, {}, True),  # +2 is the MCID
    ((12,), 9, {}, False),  # better
    ((12, 20), 14, {}, True),  # against the latest previous (12), not the worst (20)
    ((20, 12), 14, {}, False),  # the latest previous is 20: better, not worse
    ((), 30, {}, False),  # first questionnaire: nothing to compare with
    ((12,), 14, {"cat_mcid": 4}, False),  # this patient's threshold is 4 points
])
def test_cat_rise_since_the_previous_questionnaire(history, today, overrides, alerts):
    # history lists the most recent first, one week apart
    recent = [reading(v, NOW - (i + 1) * WEEK) for i, v in enumerate(history)]
    ctx = PatientContext("p1", NOW, tuple(recent),
                         parameters=merge_parameters(default_parameters(), overrides))
    found = cat_rise(reading(today), ctx)
    assert bool(found) is alerts
    assert all(a.rule == "cat-mcid" and a.severity == "yellow" for a in found)


def test_the_reason_names_the_mcid_and_the_previous_date():
    ctx = PatientContext("p1", NOW, (reading(12, NOW - WEEK),))
    (alert,) = cat_rise(reading(15), ctx)
    assert alert.reason == ("CAT rose 3 points (12 → 15) since 08:00 on 28 Oct 2025; "
                            "2 points is the minimal clinically important difference")


def test_a_later_questionnaire_is_not_the_previous_one():
    ctx = PatientContext("p1", NOW, (reading(30, NOW + WEEK), reading(12, NOW - WEEK)))
    assert cat_rise(reading(13), ctx) == []
