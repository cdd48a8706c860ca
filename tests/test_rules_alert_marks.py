"""Alert marks on the charts: which reading a rule's alert is about, and what falls in a period."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from telekol.server.alerts.rules.alert_marks import AlertMark, alert_marks, concerned_code

NOW = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class StoredAlert:
    id: int | None
    rule: str
    severity: str
    created_at: datetime
    acknowledged_at: datetime | None = None


@pytest.mark.parametrize(("rule", "code"), [
    ("threshold:spo2", "spo2"),
    ("threshold:bp_sys", "bp_sys"),
    ("threshold:bp_dia", "bp_dia"),
    ("threshold:temperature", "temperature"),
    ("baseline:spo2-drop", "spo2"),
    ("baseline:spo2-below-baseline", "spo2"),
    ("baseline:fev1", "fev1"),
    ("baseline:fvc", "fvc"),
    ("weight-gain", "weight"),
    ("cat-mcid", "cat"),
    ("symptoms", "symptoms"),
    ("missing:spo2", "spo2"),
    ("news2", None),  # several parameters at once
    ("device:battery", None),
    ("device:silent", None),
    ("baseline:", None),
    ("threshold:", None),
    ("something-new", None),
])
def test_each_rule_names_the_reading_its_alert_is_about(rule, code):
    assert concerned_code(rule) == code


def test_alerts_raised_or_acknowledged_in_the_period_leave_marks_oldest_first():
    start = NOW - 24 * HOUR
    alerts = [
        StoredAlert(1, "threshold:spo2", "red", NOW - 2 * HOUR, NOW - HOUR),
        StoredAlert(2, "weight-gain", "yellow", NOW - 30 * HOUR, NOW - 20 * HOUR),
        StoredAlert(3, "baseline:fev1", "yellow", NOW - 40 * HOUR, NOW - 30 * HOUR),
        StoredAlert(4, "news2", "red", NOW - HOUR),
        StoredAlert(5, "threshold:bp_dia", "yellow", NOW - 3 * HOUR),
    ]
    assert alert_marks(alerts, start, NOW) == [
        AlertMark(2, "weight", "weight-gain", "yellow", None, NOW - 20 * HOUR),
        AlertMark(5, "bp_dia", "threshold:bp_dia", "yellow", NOW - 3 * HOUR, None),
        AlertMark(1, "spo2", "threshold:spo2", "red", NOW - 2 * HOUR, NOW - HOUR),
    ]


def test_an_acknowledgement_after_the_period_is_not_marked():
    alert = StoredAlert(7, "cat-mcid", "yellow", NOW - 50 * HOUR, NOW + HOUR)
    assert alert_marks([alert], NOW - 72 * HOUR, NOW) == [
        AlertMark(7, "cat", "cat-mcid", "yellow", NOW - 50 * HOUR, None)]
    assert alert_marks([alert], NOW - 24 * HOUR, NOW) == []
