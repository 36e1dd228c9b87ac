"""The outbox: rows written in the handler's transaction, relayed to RabbitMQ after commit.

The relay of the process that committed is woken at once (`OutboxRelay.wake`, called by the
unit of work after its commit); every relay also polls, so that rows a process left behind
when it died are relayed by the others. No LISTEN/NOTIFY: a NOTIFY serialises every commit
that carries one on a cluster-wide lock, and wakes every process to race for the same rows."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from contracts.base import Contract
from contracts.registry import ROUTING_KEY_OF, exchange_of
from userprov.runtime import metrics, trace_context

log = structlog.get_logger()

@dataclass(frozen=True)
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    correlation_id: str | None
    type: str  # the message name, as the AMQP `type` property
    trace: trace_context.Carrier | None = None  # W3C trace context headers

    @classmethod
    def event(cls, event: Contract, correlation_id: str | None) -> OutgoingMessage:
        routing_key = ROUTING_KEY_OF[type(event)]
        body = event.model_dump_json().encode()
        return cls(exchange_of(routing_key), routing_key, body, str(uuid.uuid4()), correlation_id, routing_key,
                   trace_context.current.get())

    @classmethod
    def reply(cls, answer: Contract, reply_to: str, correlation_id: str | None, message_type: str) -> OutgoingMessage:
        """To the caller's queue, through the default exchange."""
        return cls("", reply_to, answer.model_dump_json().encode(), str(uuid.uuid4()), correlation_id, message_type,
                   trace_context.current.get())


async def write(conn: asyncpg.Connection, messages: Sequence[OutgoingMessage]) -> None:
    if not messages:
        return
    await conn.execute(
        "INSERT INTO outbox (exchange, routing_key, message_id, correlation_id, body, message_type, traceparent, tracestate)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[])",
        [m.exchange for m in messages],
        [m.routing_key for m in messages],
        [m.message_id for m in messages],
        [m.correlation_id for m in messages],
        [m.body for m in messages],
        [m.type for m in messages],
        [m.trace.get(trace_context.TRACEPARENT) if m.trace else None for m in messages],
        [m.trace.get(trace_context.TRACESTATE) if m.trace else None for m in messages],
    )


Publish = Callable[[Sequence[OutgoingMessage]], Awaitable[None]]


def _trace_of(row: asyncpg.Record) -> trace_context.Carrier | None:
    if row["traceparent"] is None:
        return None
    carrier = {trace_context.TRACEPARENT: row["traceparent"]}
    if row["tracestate"] is not None:
        carrier[trace_context.TRACESTATE] = row["tracestate"]
    return carrier


class OutboxRelay:
    """Publishes committed outbox rows with confirms, then deletes them.

    Rows are claimed with SKIP LOCKED, so several processes relay side by side; a row is
    deleted only after the broker confirmed it, so a crash in between publishes it again
    with the same message_id, which the consumers' inbox absorbs.
    """

    def __init__(self, pool: asyncpg.Pool, publish: Publish, batch_size: int, poll_seconds: float):
        self._pool = pool
        self._publish = publish
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self.lag_seconds = 0.0  # the age of the oldest row found waiting at the last batch

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                relayed = await self.relay_batch()
                failures = 0
            except Exception as error:  # noqa: BLE001 - the relay must outlive any fault
                failures += 1
                log.warning("outbox_relay_failed", error=repr(error), failures=failures)
                await self._sleep(min(0.2 * 2**failures, 5.0))
                continue
            if relayed < self._batch_size:
                await self._sleep(self._poll_seconds)

    def wake(self) -> None:
        """Rows were committed in this process: relay them now rather than at the next poll."""
        self._wakeup.set()

    async def relay_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, exchange, routing_key, message_id, correlation_id, body, traceparent, tracestate,"
                " COALESCE(message_type, routing_key) AS message_type, extract(epoch FROM now() - created_at) AS age"
                " FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            self.lag_seconds = max((float(r["age"]) for r in rows), default=0.0)
            metrics.OUTBOX_LAG.set(self.lag_seconds)
            if not rows:
                return 0
            await self._publish(
                [
                    OutgoingMessage(r["exchange"], r["routing_key"], r["body"], r["message_id"], r["correlation_id"],
                                    r["message_type"], _trace_of(r))
                    for r in rows
                ]
            )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        metrics.OUTBOX_RELAYED.inc(len(rows))
        return len(rows)

    async def flush(self, timeout: float) -> bool:
        """Relays until the outbox is empty; False when time ran out or a dependency failed first."""
        try:
            async with asyncio.timeout(timeout):
                while await self.relay_batch():
                    pass
            return True
        except Exception as error:  # noqa: BLE001 - TimeoutError included
            log.warning("outbox_flush_incomplete", error=repr(error))
            return False

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            pass
        self._wakeup.clear()
