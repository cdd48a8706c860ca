"""Phone numbers of organisations: checked, stored as E.164, shown the Danish way."""

from __future__ import annotations

import pytest
from telekol.server.care.telephone import InvalidPhone, normalise, shown, tel_uri


@pytest.mark.parametrize(("typed", "stored"), [
    ("72000021", "+4572000021"), ("72 00 00 21", "+4572000021"), ("+45 72 00 00 21", "+4572000021"),
    ("0045 7200-0021", "+4572000021"), ("(+45) 72.00.00.21", "+4572000021"),
    ("+46 8 123 456 78", "+46812345678"), ("+44 20 7946 0018", "+442079460018"),
])
def test_a_typed_number_is_stored_as_e164(typed: str, stored: str) -> None:
    assert normalise(typed) == stored


@pytest.mark.parametrize("typed", ["", "112", "7200002", "720000211", "+45 7200 002",
                                   "+45 720 000 211", "72-OO-OO-21", "+0 12345678", "tel:72000021"])
def test_anything_else_is_refused(typed: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise(typed)


@pytest.mark.parametrize(("stored", "text", "uri"), [
    ("+4572000021", "72 00 00 21", "tel:+4572000021"),
    ("72000021", "72 00 00 21", "tel:+4572000021"),
    ("+442079460018", "+442079460018", "tel:+442079460018"),
])
def test_a_number_is_shown_in_pairs_and_called_through_a_tel_uri(stored: str, text: str,
                                                                 uri: str) -> None:
    assert (shown(stored), tel_uri(stored)) == (text, uri)
