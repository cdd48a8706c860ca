"""Rule parameters: every clinical number a rule uses, as data with its source (pure).

The defaults are a patient-group starting point that needs clinical sign-off; a clinician can
override any of them per patient (`merge_parameters`). Sources are cited as in
/work/shared/reference/clinical-codes.md §3, §4 and §7; docs/alerting.md lists them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

INT_J_MED_INFORM_2018 = ('"A pilot study of daily telemonitoring to predict acute exacerbation '
                         'in COPD", Int J Med Inform 2018, doi:10.1016/j.ijmedinf.2018.04.013')
COOPER_2020 = "Cooper CB et al., Int J COPD 2020;15:2005-2013, doi:10.2147/COPD.S256907"
COOPER_2020_WINDOW = (f"{COOPER_2020}: its 1.645-SD limit assumes an SD from a 7-day window of "
                      "daily readings; 5 of 7 days is TeleKOL's reading of that [NF], needs "
                      "clinical sign-off")
TELBIL_2011 = "TELBIL: Martín-Lesende I et al., BMC Health Serv Res 2011;11:56, Table 1"
KON_2014 = ("Kon SSC et al., Lancet Respir Med 2014;2(3):195-203, "
            "doi:10.1016/S2213-2600(14)70001-3")
RCP_2017 = ("RCP, National Early Warning Score (NEWS) 2: Standardising the assessment of "
            "acute-illness severity in the NHS, London: RCP, 2017, ISBN 978-1-86016-682-2; "
            "Chart 4")
ANTHONISEN_1987 = ("Anthonisen NR et al., Ann Intern Med 1987;106:196-204 "
                   "(via secondary sources [S])")
TELEKOL_DEFAULT = "TeleKOL engineering default, no published value [NF]; needs clinical sign-off"
OPERATIONAL = ("TeleKOL operational default (no clinical source); "
               "set by the monitoring organisation")


AUTO_RESOLVE = "TeleKOL operational default; needs clinical sign-off"


class UnknownParameter(KeyError):
    """An override names a parameter no rule uses."""


@dataclass(frozen=True)
class Parameter:
    """One clinical number, its unit and where it comes from (a paper or who set it)."""

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class RuleParameters:
    """All numbers the rules use; one instance per patient (group defaults + overrides)."""

    spo2_daily_drop_points: Parameter
    spo2_baseline_drop_points: Parameter
    baseline_days: Parameter
    baseline_min_readings: Parameter
    fev1_sd_factor: Parameter
    weight_gain_kg: Parameter
    weight_days: Parameter
    cat_mcid: Parameter
    symptom_window_hours: Parameter
    symptoms_red_count: Parameter
    symptom_persist_hours: Parameter
    news2_medium: Parameter
    news2_high: Parameter
    news2_single: Parameter
    news2_window_minutes: Parameter
    missing_grace_minutes: Parameter
    missing_early_minutes: Parameter
    device_silent_hours: Parameter
    battery_low_percent: Parameter
    clock_skew_minutes: Parameter
    clock_behind_minutes: Parameter
    clock_uploads: Parameter
    rejections_in_a_row: Parameter
    late_after_minutes: Parameter
    auto_resolve_hours: Parameter


# name, default, unit, source
# fmt: off
DEFAULTS: tuple[tuple[str, float, str, str], ...] = (
    ("spo2_daily_drop_points", 4, "percentage points", INT_J_MED_INFORM_2018),
    ("spo2_baseline_drop_points", 3, "percentage points", TELEKOL_DEFAULT),
    ("baseline_days", 7, "days", f"{INT_J_MED_INFORM_2018}; {COOPER_2020}"),
    ("baseline_min_readings", 5, "readings", COOPER_2020_WINDOW),
    ("fev1_sd_factor", 1.645, "SD", COOPER_2020),
    ("weight_gain_kg", 1.0, "kg", TELBIL_2011),
    ("weight_days", 3, "days", TELBIL_2011),
    ("cat_mcid", 2, "points", KON_2014),
    ("symptom_window_hours", 24, "hours", TELEKOL_DEFAULT),
    ("symptoms_red_count", 2, "cardinal symptoms", ANTHONISEN_1987),
    ("symptom_persist_hours", 48, "hours", TELEKOL_DEFAULT),
    ("news2_medium", 5, "points", RCP_2017),
    ("news2_high", 7, "points", RCP_2017),
    ("news2_single", 3, "points", RCP_2017),
    ("news2_window_minutes", 60, "minutes", TELEKOL_DEFAULT),
    ("missing_grace_minutes", 120, "minutes", OPERATIONAL),
    ("missing_early_minutes", 120, "minutes", OPERATIONAL),
    ("device_silent_hours", 24, "hours", OPERATIONAL),
    ("battery_low_percent", 20, "%", OPERATIONAL),
    ("clock_skew_minutes", 2, "minutes", OPERATIONAL),
    ("clock_behind_minutes", 10, "minutes", OPERATIONAL),
    ("clock_uploads", 3, "uploads", OPERATIONAL),
    ("rejections_in_a_row", 3, "messages", OPERATIONAL),
    ("late_after_minutes", 10, "minutes", OPERATIONAL),
    ("auto_resolve_hours", 24, "hours", AUTO_RESOLVE),
)
# fmt: on


def default_parameters() -> RuleParameters:
    """Return the patient-group defaults, each with its unit and source."""
    return RuleParameters(**{name: Parameter(float(value), unit, source)
                             for name, value, unit, source in DEFAULTS})


def merge_parameters(base: RuleParameters, overrides: Mapping[str, float | Parameter],
                     source: str = "patient care plan") -> RuleParameters:
    """Return `base` with per-patient overrides; a bare number keeps the unit, cites `source`."""
    known = {f.name for f in fields(RuleParameters)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UnknownParameter(f"unknown rule parameter(s): {', '.join(unknown)}")
    changes = {name: _as_parameter(getattr(base, name), new, source)
               for name, new in overrides.items()}
    return replace(base, **changes)


def _as_parameter(old: Parameter, new: float | Parameter, source: str) -> Parameter:
    if isinstance(new, Parameter):
        return new
    return Parameter(float(new), old.unit, source)
