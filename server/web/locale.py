"""Choose Danish or English per request: ?lang=, then the remembered choice, else Danish.

The users are Danish: a ward PC set up with an English browser still gets Danish until
someone picks English, and the choice is remembered in a cookie.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request

LANGUAGES = ("da", "en")
DEFAULT_LANGUAGE = "da"
LANG_COOKIE = "telekol_lang"


def select_locale() -> str:
    """Return the language for this request (Danish unless English was chosen)."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def here_without_lang() -> str:
    """Return this page's path and query without `lang`, to come back to after switching."""
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + (f"?{urlencode(query)}" if query else "")
