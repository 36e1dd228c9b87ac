"""The base every message model shares, and the small value types they reuse."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator


class Contract(BaseModel):
    """A message on the wire: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        """No text may hold U+0000: nothing downstream (PostgreSQL text, email headers) can carry it."""
        if _holds_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(v) for v in value)
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
MembershipStatus = Literal["pending", "invited", "transfer_pending", "active", "suspended", "removed"]
InvitationKind = Literal["welcome", "transfer"]
AssetKind = Literal["session_history", "scheduled_session", "upcoming_recording"]
RequestedBy = Annotated[
    str | None,
    Field(
        default=None,
        max_length=128,
        description="Email of the acting user; omitted when a trusted platform service acts.",
        examples=["admin@example.com"],
    ),
]


class FieldError(Contract):
    field: str = Field(description="Where the error is, e.g. `email`, `first_name`, `products`, `users.3.email`.")
    code: str = Field(description="A stable machine-readable code (see the README's table).")
    message: str = Field(description="A human-readable explanation.")
