"""What the charts draw over a patient's readings: the personal baseline and the alert marks.

The baseline is computed with the patient's own rule parameters (group defaults plus the
clinician's overrides, as the rules get them) from the readings stored now; the marks are the
patient's alerts raised or acknowledged in the period. The pure parts are
`rules/personal_baseline.py` and `rules/alert_marks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select
from telekol.server.alerts.rule_context import parameters_for
from telekol.server.alerts.rules import Reading, RuleParameters
from telekol.server.alerts.rules.alert_marks import AlertMark, alert_marks
from telekol.server.alerts.rules.personal_baseline import (
    BASELINE_CODES,
    BaselinePoint,
    personal_baseline,
    window_days,
)
from telekol.server.models import Alert, Observation, PatientRuleSettings

# Per code, newest first: two values each, so a demo hub sending every few seconds still gets
# two days of baseline; a window reaching past what was read gets no baseline.
MAX_READINGS = 50_000
MAX_ALERTS = 500


@dataclass(frozen=True)
class Overlays:
    """A patient's baselines per reading code, their windows in days, and alert marks."""

    baselines: dict[str, list[BaselinePoint]]
    window_days: dict[str, float]
    marks: list[AlertMark]


def overlays(session: Session, patient_id: str, start: datetime, end: datetime,
             codes: set[str]) -> Overlays:
    """Return the baselines of the charted `codes` and the alert marks in [start, end]."""
    parameters = parameters_for(session.get(PatientRuleSettings, patient_id))
    wanted = [code for code in BASELINE_CODES if code in codes]
    baselines = {code: baseline(session, patient_id, code, parameters, start)
                 for code in wanted}
    return Overlays({code: points for code, points in baselines.items() if points},
                    {code: window_days(code, parameters) for code in wanted},
                    alert_marks(alerts(session, patient_id, start, end), start, end))


def baseline(session: Session, patient_id: str, code: str, parameters: RuleParameters,
             start: datetime) -> list[BaselinePoint]:
    """Return the baseline of one code from `start`, reading the window before it too."""
    since = start - timedelta(days=window_days(code, parameters))
    rows = session.exec(select(Observation.effective, Observation.value).where(
        Observation.patient_id == patient_id, Observation.type_code == code,
        col(Observation.effective) >= since)
        .order_by(col(Observation.effective).desc()).limit(MAX_READINGS)).all()
    cut_off = rows[-1][0] if len(rows) == MAX_READINGS else None
    readings = [Reading(code, value, "", taken_at, taken_at) for taken_at, value in rows
                if value is not None]
    return personal_baseline(code, readings, parameters, start, complete_from=cut_off)


def alerts(session: Session, patient_id: str, start: datetime, end: datetime) -> list[Alert]:
    """Return the patient's alerts raised or acknowledged in [start, end], newest first."""
    return list(session.exec(select(Alert).where(
        Alert.patient_id == patient_id,
        or_(col(Alert.created_at).between(start, end),
            col(Alert.acknowledged_at).between(start, end)))
        .order_by(col(Alert.created_at).desc()).limit(MAX_ALERTS)))
