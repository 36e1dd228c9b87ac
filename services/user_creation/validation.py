"""The per-row rules for a person to add: names, email, duplicates within one command."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from contracts.base import FieldError

NAME_MAX = 32
EMAIL_MAX = 128
FORBIDDEN_IN_NAMES = frozenset("<>\u2028\u2029")


@dataclass(frozen=True)
class Candidate:
    """A row as given, before validation."""

    row: int
    first_name: str
    last_name: str
    email: str
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class ValidRow:
    row: int
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True)
class InvalidRow:
    row: int
    email: str
    errors: tuple[FieldError, ...]


def validate_rows(candidates: Iterable[Candidate]) -> list[ValidRow | InvalidRow]:
    """Checks every row; the second row with an email already seen in the command is rejected."""
    seen: set[str] = set()
    results: list[ValidRow | InvalidRow] = []
    for candidate in candidates:
        result = validate_row(candidate)
        if isinstance(result, ValidRow):
            if result.email in seen:
                result = InvalidRow(
                    result.row,
                    result.email,
                    (FieldError(field="email", code="duplicate_in_command", message="This email appears earlier in the command."),),
                )
            else:
                seen.add(result.email)
        results.append(result)
    return results


def validate_row(candidate: Candidate) -> ValidRow | InvalidRow:
    if candidate.errors:  # an entry that could not be read has no fields to check
        return InvalidRow(candidate.row, candidate.email.strip().lower(), candidate.errors)
    first, first_errors = check_name("first_name", candidate.first_name)
    last, last_errors = check_name("last_name", candidate.last_name)
    email, email_errors = check_email(candidate.email)
    errors = (*candidate.errors, *first_errors, *last_errors, *email_errors)
    if errors:
        return InvalidRow(candidate.row, email or candidate.email.strip(), errors)
    return ValidRow(candidate.row, first, last, email)


def check_name(field: str, value: str) -> tuple[str, list[FieldError]]:
    name = unicodedata.normalize("NFC", value).strip()
    label = field.replace("_", " ").capitalize()
    if not name:
        return name, [FieldError(field=field, code="required", message=f"{label} is required.")]
    errors = []
    if len(name) > NAME_MAX:
        errors.append(
            FieldError(field=field, code="too_long", message=f"{label} has {len(name)} characters; at most {NAME_MAX}.")
        )
    if any(c in FORBIDDEN_IN_NAMES or unicodedata.category(c) == "Cc" for c in name):
        errors.append(
            FieldError(field=field, code="invalid_characters", message=f"{label} contains control characters, newlines, < or >.")
        )
    return name, errors


def check_email(value: str) -> tuple[str, list[FieldError]]:
    email = value.strip()
    if not email:
        return email, [FieldError(field="email", code="required", message="Email is required.")]
    if len(email) > EMAIL_MAX:
        return email.lower(), [
            FieldError(field="email", code="too_long", message=f"Email has {len(email)} characters; at most {EMAIL_MAX}.")
        ]
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        return email.lower(), [FieldError(field="email", code="invalid_email", message=str(error))]
    return email.lower(), []
