"""Telephone numbers of organisations: checked and stored as E.164, shown the Danish way (pure).

Stored as E.164 (`+4572000021`): one form for the database, the `tel:` links and FHIR
`ContactPoint.value`. A Danish number is shown in pairs of digits ("72 00 00 21"), as
Danes write it; a foreign number is shown as stored.
"""

from __future__ import annotations

import re

DENMARK = "+45"
_SEPARATORS = re.compile(r"[\s\-./()]")
_E164 = re.compile(r"\A\+[1-9][0-9]{6,14}\Z")
_DANISH = re.compile(r"\A[0-9]{8}\Z")


class InvalidPhone(ValueError):
    """Text that is not a telephone number an organisation can be called on."""


def normalise(text: str) -> str:
    """Return a phone number as E.164; 8 digits are Danish; raise InvalidPhone otherwise."""
    digits = _SEPARATORS.sub("", text.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if _DANISH.match(digits):
        digits = DENMARK + digits
    if not _E164.match(digits) or (digits.startswith(DENMARK) and
                                   not _DANISH.match(digits[len(DENMARK):])):
        raise InvalidPhone("a phone number is 8 digits, or + and the country code first")
    return digits


def shown(number: str) -> str:
    """Return a number as people read it: "72 00 00 21" for a Danish one."""
    try:
        e164 = normalise(number)
    except InvalidPhone:
        return number
    if e164.startswith(DENMARK):
        local = e164[len(DENMARK):]
        return " ".join(local[i:i + 2] for i in range(0, 8, 2))
    return e164


def tel_uri(number: str) -> str:
    """Return the `tel:` URI (RFC 3966) a phone opens to call the number."""
    try:
        return "tel:" + normalise(number)
    except InvalidPhone:
        return "tel:" + _SEPARATORS.sub("", number)
