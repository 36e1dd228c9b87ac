"""The outbox: rows written in the handler's transaction, relayed to RabbitMQ after commit.

The process that committed publishes its rows at once, from memory (`OutboxRelay.committed`,
called after the commit); every relay also polls, so that rows a process left behind when it
died are relayed by the others. No LISTEN/NOTIFY: a NOTIFY serialises every commit that
carries one on a cluster-wide lock, and wakes every process to race for the same rows."""
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
from userprov.runtime.origin import Origin

log = structlog.get_logger()

DELETE_BATCH_SECONDS = 0.05  # published rows are deleted together, this long after the first

@dataclass(frozen=True)
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    correlation_id: str | None
    type: str  # the message name, as the AMQP `type` property
    trace: trace_context.Carrier | None = None  # W3C trace context headers
    taken_in_process: bool = False  # a signal whose work the publishing process has taken already

    @classmethod
    def event(cls, event: Contract, correlation_id: str | None, trace: trace_context.Carrier | None = None) -> OutgoingMessage:
        """`trace`: the W3C context the event belongs to; by default the one being processed now."""
        routing_key = ROUTING_KEY_OF[type(event)]
        body = event.model_dump_json().encode()
        return cls(exchange_of(routing_key), routing_key, body, str(uuid.uuid4()), correlation_id, routing_key,
                   trace if trace is not None else trace_context.current.get())

    @classmethod
    def reply(cls, answer: Contract, reply_to: str, correlation_id: str | None, message_type: str) -> OutgoingMessage:
        """To the caller's queue, through the default exchange."""
        return cls("", reply_to, answer.model_dump_json().encode(), str(uuid.uuid4()), correlation_id, message_type,
                   trace_context.current.get())


COLUMNS = "exchange, routing_key, message_id, correlation_id, body, message_type, traceparent, tracestate"
_TYPES = ("text", "text", "text", "text", "bytea", "text", "text", "text")


def insert_sql(first_parameter: int = 1, keyed_by: str | None = None) -> str:
    """An INSERT of outbox rows from the arrays of `parameters` (numbered from `first_parameter`),
    returning `id, message_id`. With `keyed_by`, the name of a CTE with a `key` column of type
    uuid, the rows take one more array, of keys, and only those whose key is in the CTE are
    written: the events of the state changes that a statement made, in the same statement."""
    arrays = [f"${first_parameter + n}::{t}[]" for n, t in enumerate(_TYPES)]
    if keyed_by is None:
        return f"INSERT INTO outbox ({COLUMNS}) SELECT * FROM unnest({', '.join(arrays)}) RETURNING id, message_id"
    keys = f"${first_parameter + len(_TYPES)}::uuid[]"
    return (
        f"INSERT INTO outbox ({COLUMNS}) SELECT {', '.join('e.' + c for c in COLUMNS.split(', '))}"
        f" FROM unnest({', '.join(arrays)}, {keys}) AS e({COLUMNS}, key) JOIN {keyed_by} USING (key)"
        f" RETURNING id, message_id"
    )


def parameters(messages: Sequence[OutgoingMessage]) -> list[list[object]]:
    """The arrays `insert_sql` takes, in its order."""
    return [
        [m.exchange for m in messages],
        [m.routing_key for m in messages],
        [m.message_id for m in messages],
        [m.correlation_id for m in messages],
        [m.body for m in messages],
        [m.type for m in messages],
        [m.trace.get(trace_context.TRACEPARENT) if m.trace else None for m in messages],
        [m.trace.get(trace_context.TRACESTATE) if m.trace else None for m in messages],
    ]


def written(rows: Sequence[asyncpg.Record], messages: Sequence[OutgoingMessage]) -> list[Committed]:
    """The outbox rows an `insert_sql` statement returned, with their messages."""
    by_id = {m.message_id: m for m in messages}
    return [Committed(r["id"], by_id[r["message_id"]]) for r in rows]


async def write(conn: asyncpg.Connection, messages: Sequence[OutgoingMessage]) -> list[Committed]:
    """Writes the rows in the caller's transaction; once it commits, hand the result to
    `OutboxRelay.committed` to publish them at once."""
    if not messages:
        return []
    return written(await conn.fetch(insert_sql(), *parameters(messages)), messages)


@dataclass(frozen=True)
class Committed:
    """An outbox row, with the message it holds, written by this process."""

    id: int
    message: OutgoingMessage


Publish = Callable[[Sequence[OutgoingMessage]], Awaitable[None]]


class OutboxRelay:
    """Publishes committed outbox rows with confirms, then deletes them.

    What this process commits is published from memory at once (`committed`): no read of the
    rows stands between a commit and the next service. The confirmed rows are deleted a batch
    at a time. Rows that nobody published (their process died, or the broker was away) are
    taken by every process's poller once they are older than `handover_seconds`, with SKIP
    LOCKED, so several processes relay side by side. A crash between the publish and the delete
    publishes a row again with the same message_id, which the consumers' inbox absorbs.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publish,
        batch_size: int,
        poll_seconds: float,
        handover_seconds: float = 5.0,
        in_flight_limit: int = 10_000,
    ):
        self._pool = pool
        self._publish = publish
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._handover_seconds = handover_seconds
        self._in_flight_limit = in_flight_limit
        self._in_flight = 0
        self._publishing: set[asyncio.Task[None]] = set()
        self._published: list[int] = []  # confirmed, not deleted yet
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self.lag_seconds = 0.0  # the age of the oldest row the poller found waiting at its last batch

    def committed(self, rows: Sequence[Committed]) -> None:
        """Rows this process has just committed: published now. Beyond the in-flight bound (the
        broker is slow or away) they are left to the poller."""
        if not rows or self._stopping.is_set() or self._in_flight + len(rows) > self._in_flight_limit:
            return
        self._in_flight += len(rows)
        task = asyncio.get_running_loop().create_task(self._publish_committed(rows))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish_committed(self, rows: Sequence[Committed]) -> None:
        try:
            await self._publish([r.message for r in rows])
        except Exception as error:  # noqa: BLE001 - the rows stay in the outbox for the poller
            log.info("outbox_publish_deferred", error=repr(error), messages=len(rows))
        else:
            metrics.OUTBOX_RELAYED.inc(len(rows))
            if not self._published:  # the first since the last delete: delete them together shortly
                asyncio.get_running_loop().call_later(DELETE_BATCH_SECONDS, self._wakeup.set)
            self._published.extend(r.id for r in rows)
        finally:
            self._in_flight -= len(rows)

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._delete_published()
                relayed = await self.relay_batch(self._handover_seconds)
                failures = 0
            except Exception as error:  # noqa: BLE001 - the relay must outlive any fault
                failures += 1
                log.warning("outbox_relay_failed", error=repr(error), failures=failures)
                await self._sleep(min(0.2 * 2**failures, 5.0))
                continue
            if relayed < self._batch_size:
                await self._sleep(self._poll_seconds)

    async def _delete_published(self) -> None:
        if not self._published:
            return
        ids, self._published = self._published, []
        try:
            await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        except BaseException:
            self._published.extend(ids)
            raise

    async def relay_batch(self, older_than: float = 0.0) -> int:
        """Publishes and deletes up to a batch of rows older than `older_than` seconds."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, exchange, routing_key, message_id, correlation_id, body, traceparent, tracestate,"
                " COALESCE(message_type, routing_key) AS message_type, extract(epoch FROM now() - created_at) AS age"
                " FROM outbox WHERE created_at <= now() - make_interval(secs => $2)"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
                older_than,
            )
            self.lag_seconds = max((float(r["age"]) for r in rows), default=0.0)
            metrics.OUTBOX_LAG.set(self.lag_seconds)
            if not rows:
                return 0
            await self._publish(
                [
                    OutgoingMessage(r["exchange"], r["routing_key"], r["body"], r["message_id"], r["correlation_id"],
                                    r["message_type"], Origin(None, r["traceparent"], r["tracestate"]).trace)
                    for r in rows
                ]
            )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        metrics.OUTBOX_RELAYED.inc(len(rows))
        return len(rows)

    async def flush(self, timeout: float) -> bool:
        """Waits for the publishes in flight, then relays until the outbox is empty; False when
        time ran out or a dependency failed first."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._publishing, return_exceptions=True)
                await self._delete_published()
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
