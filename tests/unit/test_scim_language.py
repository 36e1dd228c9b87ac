"""A SCIM User's preferredLanguage or locale as userprov's language."""
from __future__ import annotations

import pytest

from userprov.scim.language import language_of


@pytest.mark.parametrize(("preferred_language", "locale", "language"), [
    ("fr-FR", None, "fr"),  # Entra's preferredLanguage
    (None, "en-US", "en"),  # Okta's locale
    (None, "de_CH", "de"),
    ("JA", None, "ja"),
    ("pt-BR", "en-US", "pt"),  # preferredLanguage first
    ("zh-TW", "nl-BE", "nl"),  # not supported: then the locale
    ("da, en-gb;q=0.8, en;q=0.7", None, "en"),  # an Accept-Language value, RFC 7643 §4.1.1
    ("it;q=0.2, es;q=0.9", None, "es"),  # by quality
    ("fr;q=0, de", None, "de"),  # q=0: not acceptable
    ("fr;q=x", "it", "it"),
    ("zh", "ko-KR", None),
    ("", "", None),
    (None, None, None),
    ("x" * 70_000, ",".join(["zz"] * 10_000 + ["fr"]), None),  # only the first ranges of a long value are read
])
def test_the_first_supported_language(preferred_language: str | None, locale: str | None, language: str | None) -> None:
    assert language_of(preferred_language, locale) == language
