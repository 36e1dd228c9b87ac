"""The last failure of each message that went back to its queue, read when it is parked."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts.text import printable
from userprov.masking import mask_emails_in

MESSAGE_MAX = 1000


@dataclass(frozen=True)
class Failure:
    error_type: str
    error_message: str
    first_failure: datetime
    last_failure: datetime


def describe(error: BaseException) -> tuple[str, str]:
    """The exception's type and message as a parked copy carries them: printable, bounded,
    addresses masked (a constraint violation's detail can quote one)."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return printable(name, 200), mask_emails_in(printable(str(error), MESSAGE_MAX))


# Bounds the acquire too (a pool's acquire has no timeout of its own): a failing message must
# settle promptly even when the database is the thing that fails.
DEADLINE_SECONDS = 3.0


async def record(pool: asyncpg.Pool, service: str, message_id: str, error: BaseException) -> None:
    error_type, error_message = describe(error)
    async with asyncio.timeout(DEADLINE_SECONDS):
        await pool.execute(
            "INSERT INTO delivery_failures (service, message_id, error_type, error_message) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (service, message_id) DO UPDATE SET last_failure = now(),"
            " failures = delivery_failures.failures + 1, error_type = $3, error_message = $4",
            service,
            message_id,
            error_type,
            error_message,
        )


async def find(pool: asyncpg.Pool, service: str, message_id: str) -> Failure | None:
    """The recorded failure of a message being parked. Kept (until pruned): two copies of one
    message can park at once, and a replayed message that fails again keeps its first failure."""
    async with asyncio.timeout(DEADLINE_SECONDS):
        row = await pool.fetchrow(
            "SELECT error_type, error_message, first_failure, last_failure FROM delivery_failures"
            " WHERE service = $1 AND message_id = $2",
            service,
            message_id,
        )
    return Failure(row["error_type"], row["error_message"], row["first_failure"], row["last_failure"]) if row else None

