"""Rule parameters are data with sources; per-patient overrides merge onto the defaults."""

from dataclasses import fields
from pathlib import Path

import pytest
from telekol.server.alerts.rules import (
    Parameter,
    RuleParameters,
    UnknownParameter,
    default_parameters,
    merge_parameters,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "alerting.md"


@pytest.mark.parametrize(("name", "value", "cited"), [
    ("spo2_daily_drop_points", 4, "doi:10.1016/j.ijmedinf.2018.04.013"),
    ("baseline_days", 7, "Int J Med Inform 2018"),
    ("fev1_sd_factor", 1.645, "doi:10.2147/COPD.S256907"),
    ("weight_gain_kg", 1.0, "BMC Health Serv Res 2011;11:56"),
    ("weight_days", 3, "TELBIL"),
    ("cat_mcid", 2, "Lancet Respir Med 2014;2(3):195-203"),
    ("news2_medium", 5, "RCP"),
    ("news2_high", 7, "RCP"),
    ("news2_single", 3, "RCP"),
    ("missing_grace_minutes", 120, "operational default"),
    ("symptoms_red_count", 2, "Anthonisen"),
])
def test_the_defaults_carry_the_published_numbers_and_their_sources(name, value, cited):
    parameter = getattr(default_parameters(), name)
    assert parameter.value == value
    assert cited in parameter.source


def test_every_parameter_has_a_unit_and_a_source():
    defaults = default_parameters()
    for field in fields(RuleParameters):
        parameter = getattr(defaults, field.name)
        assert parameter.unit and parameter.source, field.name


def test_a_bare_number_override_keeps_the_unit_and_cites_who_set_it():
    merged = merge_parameters(default_parameters(), {"weight_gain_kg": 2},
                              source="Dr. X, 3 Nov 2025")
    assert merged.weight_gain_kg == Parameter(2.0, "kg", "Dr. X, 3 Nov 2025")
    assert merged.cat_mcid == default_parameters().cat_mcid


def test_a_parameter_override_is_taken_as_given():
    given = Parameter(3.0, "points", "care plan of 3 Nov 2025")
    assert merge_parameters(default_parameters(), {"cat_mcid": given}).cat_mcid is given


def test_an_override_of_an_unknown_parameter_is_refused():
    with pytest.raises(UnknownParameter, match="spo2_drop"):
        merge_parameters(default_parameters(), {"spo2_drop": 3})


def test_the_defaults_are_not_changed_by_a_merge():
    base = default_parameters()
    merge_parameters(base, {"cat_mcid": 5})
    assert base.cat_mcid.value == 2


def test_the_docs_list_every_parameter_with_its_default():
    text = DOCS.read_text(encoding="utf-8")
    defaults = default_parameters()
    rows = [f"| `{f.name}` | {getattr(defaults, f.name).value:g} |" for f in fields(RuleParameters)]
    assert [row for row in rows if row not in text] == []
