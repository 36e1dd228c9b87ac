"""The page's languages: the emails' languages, with Babel's catalogs (gettext .po files read
at start) and Babel's dates."""
from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources
from io import BytesIO

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from contracts.base import LANGUAGES

DEFAULT = "en"


@cache
def translations(language: str) -> Translations:
    """The catalog of a supported language (English: the messages as written)."""
    if language == DEFAULT:
        return Translations()
    source = resources.files("userprov.links") / "locales" / f"{language}.po"
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def supported(language: str | None) -> str | None:
    return language if language in LANGUAGES else None


def from_header(accept_language: str | None) -> str:
    """The best supported language for an Accept-Language header (a page without an invitation)."""
    wanted = []
    for part in (accept_language or "")[:500].split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        if tag:
            wanted.append((weight, tag.strip()))
    ranked = [tag for _, tag in sorted(wanted, key=lambda w: -w[0])]
    try:
        best = Locale.negotiate(ranked, list(LANGUAGES), sep="-")
    except ValueError:  # a tag Babel cannot parse
        best = None
    return str(best) if best is not None else DEFAULT


def date(moment: datetime, language: str) -> str:
    """A moment as people of the language write it, in UTC, saying so."""
    return format_datetime(moment.astimezone(UTC), format="long", locale=language, tzinfo=UTC)
