"""Exceptions that steer the runtime's ack, retry and dead-letter decisions."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, stop_any, wait_exponential_jitter
from tenacity.stop import stop_base

from contracts.base import FieldError
from contracts.events import CommandRejected, RejectionReason
from contracts.text import printable

MAX_ERRORS_PER_REJECTION = 50

if TYPE_CHECKING:
    from userprov.runtime.envelope import Envelope


class AlreadyProcessed(Exception):
    """The inbox already holds this (service, message_id): the message has had its effect."""


class Rejected(Exception):
    """A well-formed message that userprov refuses as a whole: answered with `command.rejected`."""

    def __init__(self, reason: RejectionReason, message: str, errors: list[FieldError] | None = None) -> None:
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
    # a primary demoted or fenced: the pool renews its connections (userprov.db.connection.PrimaryPool)
    asyncpg.ReadOnlySQLTransactionError,
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


class _StopWhen(stop_base):
    def __init__(self, condition: Callable[[], bool]) -> None:
        self._condition = condition

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._condition()


async def retry_transient(
    attempt: Callable[[], Awaitable[None]],
    *,
    seconds: float,
    backoff_max: float,
    give_up: Callable[[], bool] = lambda: False,
    on_fault: Callable[[BaseException], None] = lambda _: None,
) -> None:
    """Runs `attempt` until it succeeds, retrying transient faults with backoff for up to
    `seconds` (or until `give_up()`); any other fault, or the last transient one, is raised.
    `on_fault` is told of each transient fault (a circuit breaker's report)."""
    try:
        await attempt()  # the first try without the retry machinery: almost every message needs no other
        return
    except Exception as error:
        if not is_transient(error):
            raise
        on_fault(error)
        if seconds <= 0 or give_up():
            raise
    await asyncio.sleep(0.1)  # the backoff's first step

    def told(state: RetryCallState) -> None:
        if state.outcome is not None and state.outcome.failed:
            failure = state.outcome.exception()
            if failure is not None and is_transient(failure):
                on_fault(failure)

    async for retry in AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_any(stop_after_delay(seconds), _StopWhen(give_up)),
        wait=wait_exponential_jitter(multiplier=0.1, max=backoff_max, jitter=0.1),
        after=told,
        reraise=True,
    ):
        with retry:
            await attempt()


def schema_rejection(error: ValidationError) -> Rejected:
    """One error per field; field paths name keys as given, made printable (a key can hold anything)."""
    errors = [
        FieldError(field=printable(".".join(str(p) for p in item["loc"]), 200) or "body", code=item["type"], message=printable(item["msg"]))
        for item in error.errors(include_url=False)[:MAX_ERRORS_PER_REJECTION]
    ]
    fields = ", ".join(e.field for e in errors[:10])
    more = f" and {error.error_count() - 10} more" if error.error_count() > 10 else ""
    return Rejected("schema_invalid", f"the message does not match its schema ({fields}{more})", errors)


def rejection_event(envelope: Envelope, rejection: Rejected) -> CommandRejected:
    """The `command.rejected` for a refused message: always serialisable, whatever it echoes."""
    return CommandRejected(
        command_id=printable(envelope.message_id, 255) if envelope.message_id else None,
        type=printable(envelope.routing_key, 255) or None,
        reason=rejection.reason,
        message=printable(rejection.message),
        errors=[
            FieldError(field=printable(e.field, 200), code=printable(e.code, 64), message=printable(e.message))
            for e in rejection.errors[:MAX_ERRORS_PER_REJECTION]
        ],
    )
