"""The per-row rules for a person to add: names, email, duplicates within one command."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.base import NAME_MAX, RowError
from contracts.email import EMAIL_MAX, EmailProblem, normalize_email
from contracts.text import is_storable, printable

FORBIDDEN_IN_NAMES = frozenset("<>")
# control, format (zero-width, bidirectional controls), surrogate, line and paragraph separators
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# letters that render as nothing: Hangul fillers, the braille blank
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


@dataclass(frozen=True)
class Candidate:
    """A row as given, before validation."""

    row: int
    first_name: str
    last_name: str
    email: str
    errors: tuple[RowError, ...] = ()
    external_id: str | None = None
    active: bool = True


@dataclass(frozen=True)
class ValidRow:
    row: int
    first_name: str
    last_name: str
    email: str
    external_id: str | None = None
    active: bool = True  # false: added deactivated, without a seat or an invitation


@dataclass(frozen=True)
class InvalidRow:
    row: int
    email: str
    errors: tuple[RowError, ...]


def validate_rows(candidates: Iterable[Candidate]) -> list[ValidRow | InvalidRow]:
    """Checks every row; the second row with an email already seen in the command is rejected."""
    return reject_repeated_emails([validate_row(c) for c in candidates])


def reject_repeated_emails(rows: Iterable[ValidRow | InvalidRow]) -> list[ValidRow | InvalidRow]:
    """The rows, with each valid row whose email an earlier row has rejected as a duplicate."""
    seen: set[str] = set()
    results: list[ValidRow | InvalidRow] = []
    for result in rows:
        if isinstance(result, ValidRow):
            if result.email in seen:
                result = InvalidRow(
                    result.row,
                    result.email,
                    (RowError(field="email", code="duplicate_in_command", message="This email appears earlier in the command."),),
                )
            else:
                seen.add(result.email)
        results.append(result)
    return results


def validate_row(candidate: Candidate) -> ValidRow | InvalidRow:
    if candidate.errors:  # an entry that could not be read has no fields to check
        return InvalidRow(candidate.row, echoed_email(candidate.email), candidate.errors)
    first, first_errors = check_name("first_name", candidate.first_name)
    last, last_errors = check_name("last_name", candidate.last_name)
    email, email_errors = check_email(candidate.email)
    errors = (*first_errors, *last_errors, *email_errors, *check_external_id(candidate.external_id))
    if errors:
        return InvalidRow(candidate.row, email or echoed_email(candidate.email), errors)
    return ValidRow(candidate.row, first, last, email, candidate.external_id, candidate.active)


def checked_changes(changes: dict[str, str | None]) -> tuple[dict[str, str | None], list[RowError]]:
    """A member's new names or external id, checked as a row's are: (the values as stored, the errors)."""
    values: dict[str, str | None] = {}
    errors: list[RowError] = []
    for field, value in changes.items():
        if field == "external_id":
            errors += check_external_id(value)
            values[field] = value
        elif value is not None:
            values[field], found = check_name(field, value)
            errors += found
    return values, errors


EXTERNAL_ID_MAX = 255


def check_external_id(value: str | None) -> list[RowError]:
    """Kept as given: an id of another system is compared exactly, never normalised."""
    if value is None:
        return []
    if len(value) > EXTERNAL_ID_MAX:
        return [RowError(field="external_id", code="too_long", message=f"External id has {len(value)} characters; at most {EXTERNAL_ID_MAX}.")]
    if looks_empty(value) or not value.isprintable() or not is_storable(value):
        return [RowError(field="external_id", code="invalid_characters",
                         message="External id must be printable characters, not only spaces.")]
    return []


def check_name(field: str, value: str) -> tuple[str, list[RowError]]:
    name = unicodedata.normalize("NFC", value).strip()
    label = field.replace("_", " ").capitalize()
    if looks_empty(name):
        return name, [RowError(field=field, code="required", message=f"{label} is required.")]
    errors = []
    if len(name) > NAME_MAX:
        errors.append(
            RowError(field=field, code="too_long", message=f"{label} has {len(name)} characters; at most {NAME_MAX}.")
        )
    if not is_storable(name) or any(c in FORBIDDEN_IN_NAMES or unicodedata.category(c) in FORBIDDEN_CATEGORIES for c in name):
        errors.append(
            RowError(
                field=field,
                code="invalid_characters",
                message=f"{label} contains control, invisible or direction characters, line breaks, < or >.",
            )
        )
    return name, errors


def looks_empty(name: str) -> bool:
    """Nothing a reader would see: blank, or only spaces, format characters (zero-width
    spaces, direction marks), combining marks and the letters that render as blanks."""
    return all(c.isspace() or c in INVISIBLE_LETTERS or unicodedata.category(c) in ("Cf", "Mn", "Me", "Zs") for c in name)


def check_email(value: str) -> tuple[str, list[RowError]]:
    """The normalised address (contracts.email), or the address as given with its error."""
    try:
        return normalize_email(value), []
    except EmailProblem as problem:
        return echoed_email(value), [RowError(field="email", code=problem.code, message=problem.message)]


def echoed_email(value: str) -> str:
    """An invalid address as it goes back in the row's result: trimmed, printable, bounded."""
    return printable(value.strip(), EMAIL_MAX)
