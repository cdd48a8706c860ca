"""Every text shown to users exists in Danish: the catalogue covers all source strings."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "clinician_ui/translations/da/LC_MESSAGES/messages.po"


def source_messages() -> set[tuple[str | None, str]]:
    """Return every translatable string in templates and Python sources, with its context."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = set()
    # The same keywords as `make extract-messages` (lazy texts are `_l`).
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None,
                "lazy_pgettext": ((1, "c"), 2)}
    for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def test_every_source_string_has_a_danish_translation() -> None:
    with open(CATALOGUE, "rb") as handle:
        catalogue = read_po(handle)
    # A plural entry's id and string are tuples: its singular id names it.
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogue
                  if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))
                  and "fuzzy" not in m.flags}
    missing = sorted(source_messages() - translated)
    assert missing == [], f"run `make extract-messages` and translate: {missing}"
