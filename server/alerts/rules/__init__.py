"""Alert rules as pure functions: a snapshot of readings and settings in, alert requests out."""

from telekol.server.alerts.rules.engine import (
    READING_RULES,
    SCHEDULE_RULES,
    evaluate,
    evaluate_schedule,
    triage_colour,
)
from telekol.server.alerts.rules.parameters import (
    Parameter,
    RuleParameters,
    UnknownParameter,
    default_parameters,
    merge_parameters,
)
from telekol.server.alerts.rules.snapshot import (
    DeviceState,
    PatientContext,
    Reading,
    ScheduledMeasurement,
)

__all__ = [
    "READING_RULES", "SCHEDULE_RULES", "DeviceState", "Parameter", "PatientContext", "Reading",
    "RuleParameters", "ScheduledMeasurement", "UnknownParameter", "default_parameters",
    "evaluate", "evaluate_schedule", "merge_parameters", "triage_colour",
]
