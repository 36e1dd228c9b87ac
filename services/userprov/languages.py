"""Languages the products support, each with built-in invitation emails."""
from __future__ import annotations

SUPPORTED_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "ja")
DEFAULT_LANGUAGE = "en"
