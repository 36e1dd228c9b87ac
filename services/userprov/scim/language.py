"""A SCIM User's language as userprov's: the primary subtag of its `preferredLanguage` (an
Accept-Language value, RFC 7643 §4.1.1: `da, en-gb;q=0.8`) or, failing that, of its `locale`
(`en-US`, `en_US`), when it is a language userprov supports."""
from __future__ import annotations

import re

from contracts.base import LANGUAGES

TAGS_READ = 20  # of a value, at most this many ranges are read: no one prefers more languages


def language_of(preferred_language: str | None, locale: str | None) -> str | None:
    """The first supported language, by preference; None when neither names one."""
    for value in (preferred_language, locale):
        for tag in _by_preference(value or ""):
            primary = re.split(r"[-_]", tag, maxsplit=1)[0].strip().lower()
            if primary in LANGUAGES:
                return primary
    return None


def _by_preference(value: str) -> list[str]:
    """The language ranges of an Accept-Language value, highest quality first (a stable
    sort: equal ones in their order), without those of quality 0."""
    ranked: list[tuple[float, str]] = []
    for part in value.split(",", TAGS_READ)[:TAGS_READ]:
        tag, _, parameters = part.partition(";")
        quality = 1.0
        name, _, number = parameters.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(number.strip()[:5])
            except ValueError:
                continue
        if quality > 0:
            ranked.append((quality, tag))
    return [tag for _, tag in sorted(ranked, key=lambda r: -r[0])]
