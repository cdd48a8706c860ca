"""Danish CPR numbers: format and birth-date checks as DK Core does them (pure).

Rules from /work/shared/reference/clinical-codes.md §5.1 (DK Core invariant `cpr`) and §5.3
(century table, sex digit, modulus 11). Modulus 11 is informational only: CPR numbers
issued since 2007 and the MedCom test patients fail it and are fully valid.
"""

from __future__ import annotations

import re
from datetime import date

CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"

# [0-9], not \d (which accepts non-ASCII digits); the DDMM part is DK Core's invariant.
_CPR_RE = re.compile(r"\A([0-9]{6})-?([0-9]{4})\Z")
_DK_CORE_RE = re.compile(
    r"\A((((0[1-9]|1[0-9]|2[0-9]|3[0-1])(01|03|05|07|08|10|12))|((0[1-9]|1[0-9]|2[0-9]|30)"
    r"(04|06|09|11))|((0[1-9]|1[0-9]|2[0-9])(02)))[0-9]{6})\Z"
)
_MODULUS_WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


class InvalidCPR(ValueError):
    """A string is not a well-formed CPR number with a real date of birth."""


def validate_cpr(value: str) -> str:
    """Return the 10-digit form of a CPR given as DDMMYY-SSSS or DDMMYYSSSS."""
    found = _CPR_RE.match(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidCPR("a CPR number is 10 digits, written DDMMYYSSSS or DDMMYY-SSSS")
    digits = found[1] + found[2]
    if not _DK_CORE_RE.match(digits):
        raise InvalidCPR(f"CPR {found[1]}-{found[2]} does not start with a day and month (DDMM)")
    _birth_date(digits)
    return digits


def birth_date(cpr: str) -> date:
    """Return the date of birth a CPR number encodes, century from digit 7."""
    return _birth_date(validate_cpr(cpr))


def sex(cpr: str) -> str:
    """Return "male" for an odd last digit and "female" for an even one."""
    return "male" if int(validate_cpr(cpr)[9]) % 2 else "female"


def modulus11_ok(cpr: str) -> bool:
    """Return whether the CPR passes modulus 11 (informational: never reject on it)."""
    digits = validate_cpr(cpr)
    return sum(int(d) * w for d, w in zip(digits, _MODULUS_WEIGHTS, strict=True)) % 11 == 0


def _birth_date(digits: str) -> date:
    day, month, yy, digit7 = int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    try:
        return date(_century(digit7, yy) + yy, month, day)
    except ValueError:
        raise InvalidCPR(f"CPR {digits[:6]}-{digits[6:]} does not encode a real date") from None


def _century(digit7: int, yy: int) -> int:
    if digit7 <= 3:
        return 1900
    if digit7 in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800
