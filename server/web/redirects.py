"""Where a `next` parameter may send the browser: a path on this site, and nothing else."""

from __future__ import annotations

from urllib.parse import urlsplit

# Printable ASCII only: browsers drop tabs and newlines and read a backslash as a slash,
# so "/\t/evil.example" or "/\\evil.example" would leave the site once the browser cleaned
# them up. A link of ours never needs anything else (paths and queries arrive encoded).
_ALLOWED = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"\\"}


def local_target(text: str | None) -> str | None:
    """Return `text` if it is a same-origin path (with an optional query), else None."""
    if not text or len(text) > 2000 or not set(text) <= _ALLOWED:
        return None
    if not text.startswith("/") or text.startswith("//"):
        return None
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return text.rstrip("?") or None
