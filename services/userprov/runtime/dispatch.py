"""The AMQP edge, written once for all four services: bytes in, one handler call in a unit of
work, one settle decision (ack, park, or give back) out, and one log line per message."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from contracts import routing
from contracts.base import Contract
from contracts.registry import REPLY_MODELS, model_of, reply_type
from contracts.text import printable
from userprov.audit.actors import Cause, cause_of
from userprov.audit.writing import Entry
from userprov.runtime import failures, metrics, outcomes, tracing
from userprov.runtime.aio import finish_or_cancel, first_of
from userprov.runtime.circuit import Circuit
from userprov.runtime.envelope import Envelope
from userprov.runtime.errors import (
    AlreadyProcessed,
    Rejected,
    is_transient,
    rejection_event,
    retry_transient,
    schema_rejection,
)
from userprov.runtime.outbox import OutgoingMessage, Publish
from userprov.runtime.parking import Why
from userprov.runtime.publisher import judged, trusted_publisher
from userprov.runtime.unit_of_work import OnCommit, UnitOfWork, publish_nothing

log = structlog.get_logger()

Handler = Callable[[Any, UnitOfWork], Awaitable[None]]
# A query's handler reads in a read-only snapshot and returns the answer: no inbox, no outbox
# (a read has no effect to deduplicate; the same query asked again is answered again).
QueryHandler = Callable[[Any, asyncpg.Connection], Awaitable[Contract]]
# Publishes a parked copy of the message, with headers saying why and whether its publisher was
# trusted (what a replay of it keeps), confirmed by the broker.
Park = Callable[[AbstractIncomingMessage, str, Why, bool], Awaitable[None]]
# Publishes a large command for the bulk lane, saying whether its publisher is trusted, confirmed.
HandOff = Callable[[AbstractIncomingMessage, bool], Awaitable[None]]


@dataclass(frozen=True)
class Signal:
    """The handler of a message that only says that work is waiting in PostgreSQL (committed
    before the message was published) for a scheduler that takes it from there: `notify` is
    called without a unit of work, and the message is acked once it returns. The work is not
    lost if the message is: the scheduler also polls."""

    notify: Callable[[Any], bool]  # True when it took the work at once (small work: the express lane)


@dataclass(frozen=True)
class Route:
    model: type[Contract]
    handler: Any  # a Handler, a QueryHandler when reply_type is set, or a Signal
    reply_type: str | None = None  # the answer's message name, for a query
    # for a command that can be bulk work: whether this one is (the interactive lane hands it on)
    large: Callable[[Any], bool] | None = None


def route_table(handlers: Mapping[str, Handler | QueryHandler | Signal],
                large: Mapping[str, Callable[[Any], bool]] | None = None) -> dict[str, Route]:
    """Routes for handlers by routing key; each message's model is the one the contracts name.
    `large`: for commands that can be bulk work, what says whether one is."""
    table = {}
    for routing_key, handler in handlers.items():
        model = model_of(routing_key)
        if model is None:
            raise LookupError(f"no contract for routing key {routing_key!r}")
        table[routing_key] = Route(model, handler, reply_type(routing_key) if routing_key in REPLY_MODELS else None,
                                   (large or {}).get(routing_key))
    return table


def read_message(envelope: Envelope, routes: Mapping[str, Route]) -> tuple[Route, Contract] | Rejected:
    """The route and the validated message, or why the message is refused as a whole before any
    handler sees it (each such refusal parks the message): the edge's decision table, pure."""
    route = routes.get(envelope.routing_key)
    if route is None:
        return Rejected("unknown_type", f"no handler for {envelope.routing_key!r}")
    property_errors = envelope.property_errors()
    if property_errors:
        fields = ", ".join(e.field for e in property_errors)
        return Rejected("invalid_properties", f"unusable AMQP properties: {fields}", property_errors)
    if not envelope.message_id:
        return Rejected("missing_message_id", "the message_id property is required")
    if route.reply_type is not None and not envelope.reply_to:
        return Rejected("missing_reply_to", "a query needs the reply_to property: the queue to answer to")
    try:
        payload = json.loads(envelope.body)
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep, integers too long
        return Rejected("malformed_json", f"the body is not JSON: {error}")
    try:
        return route, route.model.model_validate(payload)
    except ValidationError as error:
        return schema_rejection(error)
    except RecursionError:
        return Rejected("schema_invalid", "the body is nested too deeply")


def _failure_key(envelope: Envelope) -> str | None:
    """The message_id a failure is recorded under; None when it has none that can be stored."""
    return envelope.message_id if envelope.message_id and not envelope.property_errors() else None


def _cause(envelope: Envelope, command: Contract) -> Cause:
    requested_by = getattr(command, "requested_by", None)
    return cause_of(envelope, requested_by if isinstance(requested_by, str) else None, trusted_publisher.get())


# Refusals for a reason about who acts: the audit trail records them.
AUDITED_REFUSALS = frozenset({"forbidden", "last_admin"})


def _refusal_entry(envelope: Envelope, command: Contract, rejection: Rejected) -> Entry | None:
    """The audit entry of a command refused for a reason about its actor; None for other refusals."""
    account_id = getattr(command, "account_id", None)
    if rejection.reason not in AUDITED_REFUSALS or not isinstance(account_id, str):
        return None
    email = getattr(command, "email", None)
    return Entry(account_id, routing.COMMAND_REJECTED, _cause(envelope, command), None, email if isinstance(email, str) else None,
                 {"command": envelope.routing_key, "reason": rejection.reason}, envelope.message_id, envelope.causation_id)


class Settle(Enum):
    ACK = "ack"
    PARK = "park"  # a copy saying why to the parking queue, then ack (or reject: dead-lettered)
    RETRY = "retry"  # reject with requeue: counts toward the delivery limit
    LATER = "later"  # nack with requeue: a transient fault outlasted the in-process retries
    HAND_OFF = "hand_off"  # a copy for the bulk lane (userprov.runtime.handoff), then ack


@dataclass(frozen=True)
class Decision:
    settle: Settle
    outcome: str
    why: Why | None = None  # when parked


def settle_after_failure(error: Exception) -> tuple[Settle, str]:
    """A handler that raised (neither refusing nor a duplicate): a transient fault that outlasted
    its retries goes back to the queue (nack), anything else is rejected with requeue, which
    counts toward the delivery limit and so ends parked."""
    if is_transient(error):
        return Settle.LATER, "transient_fault"
    return Settle.RETRY, "handler_failed"


class Dispatcher:
    def __init__(
        self,
        service: str,
        routes: Mapping[str, Route],
        pool: asyncpg.Pool,
        *,
        delivery_limit: int,
        transient_retry_seconds: float,
        transient_backoff_max: float,
        on_commit: OnCommit = publish_nothing,
        publish: Publish | None = None,
        park: Park | None = None,
        database: Circuit | None = None,
        trusted: frozenset[str] | None = None,
        queue: str | None = None,
        hand_off: HandOff | None = None,
    ) -> None:
        """`on_commit`: called with the outbox rows a handler's transaction committed (publishes them).
        `publish`: sends answers to queries (with publisher confirms). `park`: publishes a parked
        copy with why-headers; without it (or when it fails) a parked message is rejected and
        dead-lettered by the broker, with only the broker's `x-death` header. `database`: told of
        every transient fault, it pauses this process's consumers while PostgreSQL is down.
        `trusted`: the RabbitMQ users whose messages may act as a platform service (None: all).
        `queue`: the service's queue this consumes: its own, or its bulk queue, whose commands were
        handed off by a worker that said whether their publisher is trusted (userprov.runtime.handoff).
        `hand_off`: in the interactive lane, what passes a large command on to the bulk lane."""
        self._trusted = trusted
        self.service = service
        self.queue = queue or routing.queue_name(service)
        self._handed_off = self.queue == routing.bulk_queue_name(service)
        self._hand_off = hand_off
        self._database = database
        self._park = park
        self._on_commit = on_commit
        self._publish = publish
        self._routes = routes
        self._pool = pool
        self._delivery_limit = delivery_limit
        self._transient_retry_seconds = transient_retry_seconds
        self._transient_backoff_max = transient_backoff_max
        self._in_hand: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stopped = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        try:
            await self._process(message)
        finally:
            self._in_hand.discard(task)

    async def drain(self, timeout: float) -> bool:
        """Waits for the messages in hand, then cancels what is left (unacked, so the broker
        redelivers it); True when all finished in time. Retries of transient faults stop."""
        self._stopping = True
        self._stopped.set()
        return await finish_or_cancel(self._in_hand, timeout)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            envelope = Envelope.of(message)
        except Exception:  # noqa: BLE001 - the properties as aio-pika decoded them are unusable
            log.exception("envelope_unreadable")
            envelope = Envelope("", b"", None, None, None, 0)
        trusted_publisher.set(judged(envelope, self._trusted, handed_off=self._handed_off))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            service=self.service,
            routing_key=printable(envelope.routing_key, 255),
            message_id=printable(envelope.message_id or "", 255) or None,
            correlation_id=printable(envelope.correlation_id or "", 255) or None,
        )
        with tracing.processing(message, self.service, self.queue) as span:
            while True:
                try:
                    decision = await self._decide(envelope)
                    if decision.settle is Settle.HAND_OFF:
                        assert self._hand_off is not None
                        # confirmed before the ack: a crash between the two leaves two copies, and the inbox one effect
                        await self._hand_off(message, trusted_publisher.get())
                        decision = Decision(Settle.ACK, decision.outcome)
                except asyncio.CancelledError:
                    log.warning("message_interrupted")
                    raise
                except Exception as error:  # noqa: BLE001 - a fault of the edge itself still ends in one settle decision
                    if await self._held_while_database_down(error):
                        continue
                    log.exception("dispatch_failed")
                    await self._remember_failure(envelope, error)
                    await self._back_off(envelope)
                    decision = Decision(Settle.RETRY, "dispatch_failed")
                break
            settle, outcome = decision.settle, decision.outcome
            await self._settle(message, decision)
            span.settled(settle.value, outcome)
        elapsed = time.perf_counter() - started
        known_key = envelope.routing_key if envelope.routing_key in self._routes else "other"
        metrics.MESSAGES.labels(self.service, known_key, outcome.split(":")[0]).inc()
        metrics.HANDLING_SECONDS.labels(self.service, known_key).observe(elapsed)
        log.info(
            "message_handled",
            outcome=outcome,
            settle=settle.value,
            delivery_count=envelope.delivery_count,
            duration_ms=round(elapsed * 1000, 2),
        )

    async def _decide(self, envelope: Envelope) -> Decision:
        if envelope.delivery_count >= self._delivery_limit:
            if await self._processed_already(envelope):  # e.g. a crash between the commit and the ack, again and again
                return Decision(Settle.ACK, "duplicate")
            failed = Rejected("processing_failed", f"handling failed {envelope.delivery_count} times; the message is parked")
            decision = await self._refuse(envelope, failed, remember=False)
            if decision.settle is Settle.PARK:
                decision = replace(decision, why=await self._why_at_delivery_limit(envelope))
            return replace(decision, outcome="delivery_limit_reached")
        read = read_message(envelope, self._routes)
        if isinstance(read, Rejected):
            return await self._refuse(envelope, read)
        route, command = read
        if isinstance(route.handler, Signal):
            if not envelope.taken_in_process:  # else the process that committed the work took it at once
                route.handler.notify(command)
            return Decision(Settle.ACK, "noted")
        if self._hand_off is not None and route.large is not None and route.large(command):
            return Decision(Settle.HAND_OFF, "handed_off")
        while True:
            try:
                if route.reply_type is not None:
                    await self._with_transient_retries(lambda: self._answer(route, command, envelope))  # noqa: B023
                    return Decision(Settle.ACK, "answered")
                await self._with_transient_retries(lambda: self._run_handler(route, command, envelope))  # noqa: B023
                return Decision(Settle.ACK, "done")
            except AlreadyProcessed:
                return Decision(Settle.ACK, "duplicate")
            except Rejected as rejection:
                decision = await self._refuse(envelope, rejection, park=False, audited=_refusal_entry(envelope, command, rejection))
                return replace(decision, outcome=f"rejected:{rejection.reason}")
            except Exception as error:  # noqa: BLE001 - every fault ends in a settle decision
                if await self._held_while_database_down(error):
                    continue
                return await self._after_failure(envelope, error)

    async def _after_failure(self, envelope: Envelope, error: Exception) -> Decision:
        settle, outcome = settle_after_failure(error)
        if settle is Settle.LATER:
            log.warning("transient_fault_outlasted_retries", error=repr(error))
        else:
            log.exception("handler_failed")
        await self._remember_failure(envelope, error)
        await self._back_off(envelope)
        return Decision(settle, outcome)

    async def _held_while_database_down(self, error: BaseException) -> bool:
        """When the fault was PostgreSQL being down (its probe says so), the message stays in hand,
        unsettled (a settle would use up one of its deliveries), until the database is back: True,
        then try it again. False when the database answers, or when the worker is stopping."""
        if self._database is None or self._stopping or not await self._database.down(error):
            return False
        log.warning("message_held_while_database_down", error=repr(error))
        await first_of(self._database.wait_closed(), self._stopped.wait())
        return not self._stopping

    async def _processed_already(self, envelope: Envelope) -> bool:
        message_id = _failure_key(envelope)
        if message_id is None:
            return False
        return bool(await self._pool.fetchval("SELECT EXISTS (SELECT FROM inbox WHERE service = $1 AND message_id = $2)",
                                              self.service, message_id))

    async def _remember_failure(self, envelope: Envelope, error: Exception) -> None:
        """Records the failure for the parked copy's headers, should the message end parked;
        best effort (the fault may be the database's)."""
        message_id = _failure_key(envelope)
        if message_id is None:
            return
        try:
            await failures.record(self._pool, self.service, message_id, error)
        except Exception as record_error:  # noqa: BLE001
            log.info("failure_not_recorded", error=repr(record_error))

    async def _why_at_delivery_limit(self, envelope: Envelope) -> Why:
        failure, message_id = None, _failure_key(envelope)
        if message_id is not None:
            try:
                failure = await failures.find(self._pool, self.service, message_id)
            except Exception as error:  # noqa: BLE001 - the parked copy then says less, but is parked
                log.info("failure_not_read", error=repr(error))
        if failure is None:
            return Why("processing_failed", "unknown", f"delivered {envelope.delivery_count} times without being settled"
                       " (a worker stopped or lost its connection while handling it each time)", envelope.delivery_count)
        return Why("processing_failed", failure.error_type, failure.error_message, envelope.delivery_count, failure.first_failure)

    async def _back_off(self, envelope: Envelope) -> None:
        """Before a message goes back to the queue: a fault that repeats at once must not spin."""
        await asyncio.sleep(min(0.1 * 2 ** min(envelope.delivery_count, 10), 5.0))

    async def _run_handler(self, route: Route, command: Contract, envelope: Envelope) -> None:
        command_id = envelope.message_id if outcomes.is_command(envelope.routing_key) else None
        uow = UnitOfWork(self._pool, self.service, envelope, self._on_commit, command_id, _cause(envelope, command))
        await route.handler(command, uow)
        if not uow.committed:
            raise RuntimeError(f"{route.handler.__name__} returned without committing its unit of work")

    async def _answer(self, route: Route, query: Contract, envelope: Envelope) -> None:
        if self._publish is None or route.reply_type is None or envelope.reply_to is None:
            raise RuntimeError("a query route needs a publisher and reply_to")
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            answer = await route.handler(query, conn)
        await self._publish([OutgoingMessage.reply(answer, envelope.reply_to, envelope.causation_id, route.reply_type)])

    async def _refuse(
        self, envelope: Envelope, rejection: Rejected, *, park: bool = True, remember: bool = True,
        audited: Entry | None = None,
    ) -> Decision:
        """Publishes `command.rejected`, recorded in the inbox (so once per message_id) unless
        `remember` is off: a message parked after failing must take effect when replayed.
        `audited`: the refusal's audit entry, written with it.
        A refused query is also answered (to reply_to) with the same event, every time it comes."""
        route = self._routes.get(envelope.routing_key)
        is_query = route is not None and route.reply_type is not None
        remember = remember and not is_query
        # a message of no known type (a mistyped routing key) that names a queue to answer to is
        # answered there too: its sender may be waiting for an answer to a query
        answer = is_query or (route is None and bool(envelope.reply_to))
        usable = envelope.without_unusable_properties()
        event = rejection_event(usable, rejection)
        log.info("message_refused", reason=rejection.reason)
        # Without an id a message cannot be recognised again; a parked one must work when replayed:
        # either way the refusal is recorded under an id of its own.
        claimable = usable
        if not usable.message_id or not remember:
            claimable = replace(usable, message_id=f"refusal:{uuid.uuid4()}", correlation_id=usable.causation_id)

        async def write() -> None:
            command_id = usable.message_id if outcomes.is_command(usable.routing_key) else None
            async with UnitOfWork(self._pool, self.service, claimable, self._on_commit, command_id) as uow:
                uow.emit(event)
                if audited is not None:
                    uow.record(audited)
                if answer:
                    uow.reply(event, routing.COMMAND_REJECTED)

        outcome = f"refused:{rejection.reason}"
        why = Why(rejection.reason, "Rejected", rejection.message, envelope.delivery_count + 1)
        try:
            await self._recorded_unless_database_down(write)
        except AlreadyProcessed:
            pass
        except Exception as error:  # noqa: BLE001
            if is_transient(error):
                log.warning("refusal_not_recorded", error=repr(error))
                await self._back_off(envelope)
                return Decision(Settle.LATER, "transient_fault")
            # Nothing about this message will ever record: keep it, parked, rather than spin.
            log.exception("refusal_unrecordable")
            error_type, error_message = failures.describe(error)
            return Decision(Settle.PARK, outcome, replace(why, error_type=error_type, error_message=f"{rejection.message};"
                                                          f" the refusal could not be recorded: {error_message}"))
        return Decision(Settle.PARK, outcome, why) if park else Decision(Settle.ACK, outcome)

    async def _recorded_unless_database_down(self, write: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await self._with_transient_retries(write)
                return
            except AlreadyProcessed:
                raise
            except Exception as error:
                if not await self._held_while_database_down(error):
                    raise

    async def _with_transient_retries(self, attempt: Callable[[], Awaitable[None]]) -> None:
        await retry_transient(
            attempt,
            seconds=self._transient_retry_seconds,
            backoff_max=self._transient_backoff_max,
            give_up=lambda: self._stopping,
            on_fault=self._database.report if self._database is not None else lambda _: None,
        )

    async def _settle(self, message: AbstractIncomingMessage, decision: Decision) -> None:
        settle = decision.settle
        try:
            if settle is Settle.ACK:
                await message.ack()
            elif settle is Settle.PARK:
                await self._park_or_reject(message, decision.why)
            elif settle is Settle.RETRY:
                await message.reject(requeue=True)
            else:  # LATER; and a HAND_OFF whose copy was not sent (_process sends it, then acks) is given back
                await message.nack(requeue=True)
        except Exception as error:  # noqa: BLE001
            # The channel this came on is gone: the broker redelivers, and the inbox absorbs it.
            log.info("settle_failed_channel_gone", settle=settle.value, error=repr(error))

    async def _park_or_reject(self, message: AbstractIncomingMessage, why: Why | None) -> None:
        """The copy with why-headers first, confirmed, then the ack: a crash between the two
        leaves two parked copies (a replay of both takes effect once), never none."""
        if self._park is not None and why is not None:
            try:
                await self._park(message, self.service, why, trusted_publisher.get())
            except Exception as error:  # noqa: BLE001 - e.g. properties that cannot be re-encoded
                log.warning("parked_copy_failed", error=repr(error))
            else:
                await message.ack()
                return
        await message.reject(requeue=False)
