"""Unit conversion to the canonical UCUM unit of each reading code."""

import pytest
from telekol.fhir.units import UnitError, accepted_units, canonical_unit, to_canonical


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("spo2", 91, "%", 91),
        ("pulse", 88, "bpm", 88),
        ("pulse", 88, "1/min", 88),
        ("resp_rate", 18, "1/min", 18),
        ("fev1", 2150, "mL", 2.15),
        ("fvc", 3456, "mL", 3.46),
        ("pef", 7.5, "L/s", 450.0),
        ("weight", 72450, "g", 72.45),
        ("weight", 150, "lb", 68.04),
        ("weight", 150, "[lb_av]", 68.04),
        ("temperature", 98.6, "[degF]", 37.0),
        ("temperature", 212, "degF", 100.0),
        ("bp_sys", 16, "kPa", 120.0),
        ("bp_dia", 80, "mmHg", 80),
        ("bp_dia", 10.7, "kPa", 80.3),
    ],
)
def test_accepted_units_convert_to_the_canonical_unit(code, value, unit, expected):
    assert to_canonical(code, value, unit) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("code", ["spo2", "weight", "temperature", "bp_sys", "pef"])
def test_a_missing_unit_means_the_canonical_unit(code):
    assert to_canonical(code, 42.123, None) == 42.123


@pytest.mark.parametrize("code", ["weight", "fev1", "temperature", "pef"])
def test_a_value_in_the_canonical_unit_is_returned_unrounded(code):
    assert to_canonical(code, 1.23456, canonical_unit(code)) == 1.23456


@pytest.mark.parametrize(
    ("code", "unit"),
    [
        ("spo2", "percent"),
        ("fev1", "ml"),  # UCUM is case-sensitive: millilitre is mL
        ("fev1", "l"),
        ("weight", "KG"),
        ("temperature", "C"),  # C is the coulomb in UCUM
        ("pulse", "/s"),
        ("bp_sys", "mm Hg"),
        ("pef", ""),
    ],
)
def test_an_unaccepted_unit_raises_a_unit_error_listing_the_accepted_units(code, unit):
    with pytest.raises(UnitError) as caught:
        to_canonical(code, 1.0, unit)
    for accepted in accepted_units(code):
        assert accepted in str(caught.value)


def test_an_unknown_reading_code_raises_a_unit_error():
    with pytest.raises(UnitError, match="not a known reading code"):
        to_canonical("glucose", 5.0, None)


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)


@pytest.mark.parametrize(
    ("code", "canonical"),
    [("spo2", "%"), ("pulse", "/min"), ("resp_rate", "/min"), ("fev1", "L"), ("fvc", "L"),
     ("pef", "L/min"), ("weight", "kg"), ("temperature", "Cel"), ("bp_sys", "mm[Hg]"),
     ("bp_dia", "mm[Hg]")],
)  # fmt: skip
def test_each_code_has_the_contract_canonical_unit_listed_first(code, canonical):
    assert canonical_unit(code) == canonical
    assert accepted_units(code)[0] == canonical
