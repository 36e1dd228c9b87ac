"""Languages the products support, each with built-in invitation emails (the list is part of the contracts)."""
from __future__ import annotations

from contracts.base import LANGUAGES

SUPPORTED_LANGUAGES = LANGUAGES
DEFAULT_LANGUAGE = "en"
