"""Choose Danish or English per request: ?lang=, then the cookie, then the browser."""

from __future__ import annotations

from flask import request

LANGUAGES = ("da", "en")
LANG_COOKIE = "telekol_lang"


def select_locale() -> str:
    """Return the language for this request (Danish by default)."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return request.accept_languages.best_match(LANGUAGES) or "da"
