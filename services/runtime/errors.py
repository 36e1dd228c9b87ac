"""Exceptions that steer the runtime's ack, retry and dead-letter decisions."""
from __future__ import annotations

import asyncio

import asyncpg
from pydantic import ValidationError

from contracts.base import FieldError


class AlreadyProcessed(Exception):
    """The inbox already holds this (service, message_id): the message has had its effect."""


class Rejected(Exception):
    """A well-formed message that userprov refuses as a whole: answered with `command.rejected`."""

    def __init__(self, reason: str, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.errors = errors or []


class TransientError(Exception):
    """A fault that may pass by itself (a dependency briefly unavailable)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    # a pooled connection that the server terminated while idle fails its next use this way
    asyncpg.InternalClientError,
)


def is_transient(error: BaseException) -> bool:
    """Transient itself, or raised while handling a transient fault (a rollback on a
    connection that the fault closed raises an InterfaceError of its own)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def schema_rejection(error: ValidationError) -> Rejected:
    errors = [
        FieldError(field=".".join(str(p) for p in item["loc"]) or "body", code=item["type"], message=item["msg"])
        for item in error.errors(include_url=False)
    ]
    fields = ", ".join(e.field for e in errors)
    return Rejected("schema_invalid", f"the message does not match its schema ({fields})", errors)
