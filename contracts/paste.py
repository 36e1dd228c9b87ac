"""Parses a pasted list of people: `first last... email` entries separated by `;` or line breaks.
The format of `users.add`'s `pasted`: the workers read it with this, and a client may check a
list with it before sending (`userprov import` does)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from contracts.base import RowError

# `;` and every line boundary str.splitlines knows: what spreadsheets and word processors paste
ENTRY = re.compile("[^;\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


@dataclass(frozen=True)
class PastedEntry:
    first_name: str
    last_name: str
    email: str
    errors: tuple[RowError, ...] = ()


def parse_pasted(text: str) -> Iterator[PastedEntry]:
    """One entry per non-blank piece, in input order, read lazily: a caller that only needs to
    know whether there are too many stops reading there.

    Tabs mean a spreadsheet row: exactly three fields, so names may hold spaces. Otherwise
    the first word is the first name, the last word the email, and the words between the
    last name."""
    # a list saved by Notepad or exported as "Unicode text" starts with a byte order mark: no character of a name
    for match in ENTRY.finditer(text.removeprefix("\ufeff")):
        piece = match.group()
        if piece.strip():
            yield _parse_entry(piece)


def _parse_entry(piece: str) -> PastedEntry:
    if "\t" in piece:
        fields = [f.strip() for f in piece.strip().split("\t")]
        if len(fields) == 3:
            return PastedEntry(fields[0], fields[1], fields[2])
        return PastedEntry("", "", _email_guess(fields), (_format_error(f"{len(fields)} tab-separated fields, expected 3"),))
    words = piece.split()
    if len(words) >= 3:
        return PastedEntry(words[0], " ".join(words[1:-1]), words[-1])
    return PastedEntry("", "", _email_guess(words), (_format_error(f"{len(words)} word(s), expected 'first last email'"),))


def _email_guess(parts: list[str]) -> str:
    return next((p for p in reversed(parts) if "@" in p), "")


def _format_error(detail: str) -> RowError:
    return RowError(field="pasted", code="entry_format", message=f"Cannot read this entry: {detail}.")
