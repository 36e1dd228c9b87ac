"""One mailbox, one form. Every email address userprov compares or stores goes through
`normalize_email`: trimmed, Unicode NFC, the domain in its Unicode form (an IDN domain given in
punycode and in Unicode is one domain) and everything lower-cased, so one person written two
ways is one profile, one seat and one invitation."""
from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

from contracts.text import is_storable

EMAIL_MAX = 128


EmailProblemCode = Literal["required", "too_long", "invalid_characters", "invalid_email"]


class EmailProblem(ValueError):
    """Why a text is not a usable email address: `code` is a row error code (the documentation's error codes)."""

    def __init__(self, code: EmailProblemCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_email(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise EmailProblem("required", "Email is required.")
    if len(text) > EMAIL_MAX:
        raise EmailProblem("too_long", f"Email has {len(text)} characters; at most {EMAIL_MAX}.")
    if not is_storable(text) or any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise EmailProblem("invalid_characters", "Email contains control, format or undecodable characters.")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise EmailProblem("invalid_email", str(error)) from error
    except (UnicodeError, ValueError) as error:  # idna can refuse a label email-validator let through
        raise EmailProblem("invalid_email", f"The domain cannot be encoded: {type(error).__name__}.") from error
    normalized = f"{unicodedata.normalize('NFC', valid.local_part).lower()}@{valid.domain.lower()}"
    if len(normalized) > EMAIL_MAX:
        raise EmailProblem("too_long", f"Email has {len(normalized)} characters once normalised; at most {EMAIL_MAX}.")
    return normalized


def smtp_address(email: str) -> str:
    """The form to hand an SMTP server: the domain in ASCII (IDNA), which every server accepts;
    a local part that is not ASCII still needs a server that offers SMTPUTF8."""
    if email.isascii():
        return email
    valid = validate_email(email, check_deliverability=False)
    return f"{valid.local_part}@{valid.ascii_domain}"


def _normalized(value: str) -> str:
    try:
        return normalize_email(value)
    except EmailProblem as problem:
        raise ValueError(f"{problem.code}: {problem.message}") from problem


EmailAddress = Annotated[
    str,
    Field(
        min_length=1,
        max_length=EMAIL_MAX,
        description="An email address; compared in its normalised form (trimmed, NFC, IDN domain in Unicode, lower-case).",
        examples=["ada@example.com"],
    ),
    AfterValidator(_normalized),
]


# An address as userprov stores and publishes it: normalised, at most EMAIL_MAX characters.
StoredEmail = Annotated[str, StringConstraints(max_length=EMAIL_MAX)]
