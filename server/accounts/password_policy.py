"""Which passwords are refused (NIST SP 800-63B 5.1.1.2): too short, common, or guessable.

Pure: no Flask, no SQL. `problem()` returns an English message template with its
parameters (the pages translate it, the CLI prints it), or None for a good password. The
lists are files in `server/accounts/passwords/` with their sources named in their first lines.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

MIN_LENGTH = 12  # NIST asks for at least 8 for a memorised secret chosen by the user
MAX_LENGTH = 256  # NIST asks to allow at least 64
LISTS = Path(__file__).resolve().parent / "passwords"
# A user name this short appears inside too many good passwords to refuse them all for it.
MIN_NAME_TO_MATCH = 4
_DIGITS = "0123456789"


def N_(text: str) -> str:
    """Mark English text for the translation catalogue."""
    return text


TOO_SHORT_OR_LONG = N_("a password is %(min)d-%(max)d characters")
REPEATED = N_("a password may not be one character or a short pattern repeated")
COMMON = N_("this password is one of the most common passwords; choose another")
NAME = N_("a password may not contain the username")
CPR = N_("a password may not contain the patient's CPR number")


@cache
def blocklist() -> frozenset[str]:
    """Return the refused passwords of every list file, normalised."""
    words: set[str] = set()
    for path in sorted(LISTS.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                words.add(_normal(line.strip()))
    return frozenset(words)


def problem(password: str, username: str | None = None,
            cpr: str | None = None) -> tuple[str, dict[str, object]] | None:
    """Return (message template, parameters) saying why `password` is refused, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return TOO_SHORT_OR_LONG, {"min": MIN_LENGTH, "max": MAX_LENGTH}
    text = _normal(password)
    if _repeats(text.strip()) or not text.strip():
        return REPEATED, {}
    if _is_common(text):
        return COMMON, {}
    name = _normal(username or "")
    if name and (text == name or (len(name) >= MIN_NAME_TO_MATCH and name in text)):
        return NAME, {}
    digits = "".join(c for c in text if c.isascii() and c.isdigit())
    if cpr and len(cpr) == 10 and cpr in digits:
        return CPR, {}
    return None


def _normal(text: str) -> str:
    # NFKC so that full-width or composed look-alikes compare equal; case does not count.
    return unicodedata.normalize("NFKC", text).casefold()


def _repeats(text: str) -> bool:
    """Return whether `text` is a unit of 1-4 characters repeated (a prefix of it may end)."""
    return any(len(text) > unit and (text[:unit] * (len(text) // unit + 1)).startswith(text)
               for unit in range(1, 5))


def _is_common(text: str) -> bool:
    words = blocklist()
    core = text.strip(" 0123456789!?.,;:-_#*@$%&+=~'\"/()[]{}<>|^`")
    if text in words or core in words or text.replace(" ", "") in words:
        return True
    squeezed = "".join(c for c in text if not c.isspace())
    return squeezed.isdigit() and (squeezed in _DIGITS * 3 or squeezed in _DIGITS[::-1] * 3)
