"""CPR number validation, birth date, sex and modulus 11."""

from datetime import date

import pytest
from telekol.fhir.cpr import CPR_SYSTEM, InvalidCPR, birth_date, modulus11_ok, sex, validate_cpr


@pytest.mark.parametrize(
    ("given", "digits"),
    [("020160-9995", "0201609995"), ("0201609995", "0201609995"), ("251248-4916", "2512484916")],
)
def test_both_written_forms_are_accepted_and_normalised_to_ten_digits(given, digits):
    assert validate_cpr(given) == digits


@pytest.mark.parametrize(
    ("cpr", "born"),
    [
        ("0201609995", date(1960, 1, 2)),  # MedCom test patient, digit 7 = 9, YY 60
        ("0108589995", date(1958, 8, 1)),
        ("2512484916", date(1948, 12, 25)),  # digit 7 = 4, YY 48 -> 1900s
        ("0101361234", date(1936, 1, 1)),  # digit 7 = 1 -> always 1900s
        ("0101364234", date(2036, 1, 1)),  # digit 7 = 4, YY <= 36 -> 2000s
        ("0101379234", date(1937, 1, 1)),  # digit 7 = 9, YY 37 -> 1900s
        ("0101575234", date(2057, 1, 1)),  # digit 7 = 5, YY <= 57 -> 2000s
        ("0101588234", date(1858, 1, 1)),  # digit 7 = 8, YY >= 58 -> 1800s
        ("2902004000", date(2000, 2, 29)),  # leap day in 2000
    ],
)
def test_the_birth_date_uses_the_century_table(cpr, born):
    assert birth_date(cpr) == born


@pytest.mark.parametrize(
    "cpr",
    [
        "3202601234",  # day 32
        "0013601234",  # month 13
        "3104601234",  # 31 April
        "3002601234",  # 30 February
        "2902011234",  # 29 February 1901, not a leap year
        "020160999",
        "02016099955",
        "020160 9995",
        "02016-09995",
        "02O1609995",
        "٠٢٠١٦٠٩٩٩٥",  # Arabic-Indic digits are not ASCII digits
        "",
    ],
)
def test_malformed_numbers_and_impossible_dates_are_rejected(cpr):
    with pytest.raises(InvalidCPR):
        validate_cpr(cpr)


def test_29_february_1900_is_rejected_because_1900_was_not_a_leap_year():
    with pytest.raises(InvalidCPR, match="real date"):
        validate_cpr("2902000000")  # digit 7 = 0 -> 1900


@pytest.mark.parametrize(("cpr", "expected"), [("0201609995", "male"), ("0201609996", "female")])
def test_an_odd_last_digit_is_male_and_an_even_one_female(cpr, expected):
    assert sex(cpr) == expected


@pytest.mark.parametrize(
    ("cpr", "passes"), [("2512484916", True), ("0201609995", False), ("0201609996", False)]
)
def test_modulus_11_is_reported(cpr, passes):
    assert modulus11_ok(cpr) is passes


def test_a_number_failing_modulus_11_is_still_valid():
    assert not modulus11_ok("0201609995")
    assert validate_cpr("0201609995") == "0201609995"


def test_invalid_cpr_is_a_value_error_and_the_system_is_the_cpr_oid():
    assert issubclass(InvalidCPR, ValueError)
    assert CPR_SYSTEM == "urn:oid:1.2.208.176.1.2"
