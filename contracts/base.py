"""The base every message model shares, and the small value types they reuse."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from contracts.email import EmailAddress
from contracts.text import is_storable


class Contract(BaseModel):
    """A message on the wire: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    # Fields whose text is judged row by row (a bad one is a row error, not a refused message).
    checked_per_row: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text_only(cls, value: Any, info: ValidationInfo) -> Any:
        """No text may hold U+0000 or a lone surrogate: PostgreSQL cannot store the one and
        UTF-8 cannot encode the other, so such a message could never be handled or answered."""
        if info.field_name not in cls.checked_per_row and _holds_unstorable(value):
            raise ValueError("must not contain NUL (U+0000) or lone surrogates (U+D800 to U+DFFF)")
        return value


def _holds_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return not is_storable(value)
    if isinstance(value, dict):
        return any(_holds_unstorable(k) or _holds_unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_unstorable(v) for v in value)
    return False


AccountId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
    Field(description="The account's identifier, chosen by the platform.", examples=["acme-42"]),
]
Product = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(description="A product the account holds licences for.", examples=["gotomeeting"]),
]
Role = Literal["admin", "manager"]
AccountStatus = Literal["active", "expired"]
TokenHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]  # SHA-256 of a bearer token, lower-case hex

MembershipStatus = Literal["pending", "invited", "transfer_pending", "active", "suspended", "removed", "deactivated"]
InvitationKind = Literal["welcome", "transfer"]
AssetKind = Literal["session_history", "scheduled_session", "upcoming_recording"]
RequestedBy = Annotated[
    EmailAddress | None,
    Field(
        default=None,
        description="Email of the acting user; omitted when a trusted platform service acts.",
        examples=["admin@example.com"],
    ),
]


class FieldError(Contract):
    """One field at fault."""

    field: str = Field(description="Where the error is, e.g. `email`, `first_name`, `products`, `users.3.email`.")
    code: str = Field(description="A stable machine-readable code (the documentation's error codes); for `schema_invalid`, pydantic's error type.")
    message: str = Field(description="A human-readable explanation.")


RowErrorCode = Literal[
    "entry_format", "required", "too_long", "invalid_characters", "invalid_email", "duplicate_in_command", "no_free_seat",
    "invitation_quota_exceeded",
]


class RowError(FieldError):
    """Why one row of a `users.add` was rejected."""

    code: RowErrorCode = Field(description="A row error code (the documentation's error codes).")


NAME_MAX = 32  # first and last names, after trimming

# The languages the products support, each with built-in invitation emails.
LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "ja")
