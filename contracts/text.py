"""What text can travel: every string userprov stores or publishes must be encodable as
UTF-8 and storable in PostgreSQL, so NUL and lone UTF-16 surrogates never get past the edge."""
from __future__ import annotations

import re

# U+0000 cannot be stored in PostgreSQL text; U+D800..U+DFFF alone cannot be encoded as UTF-8
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def printable(text: str, limit: int = 500) -> str:
    """`text` made safe to echo in an event or a log: unstorable and control characters (but
    tabs and newlines) become U+FFFD, and anything past `limit` characters is cut with `…`."""
    cut = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return _UNPRINTABLE.sub(REPLACEMENT, cut)
