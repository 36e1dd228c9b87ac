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
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from contracts.base import Contract
from contracts.events import CommandRejected
from services.runtime import metrics
from services.runtime.envelope import Envelope
from services.runtime.errors import AlreadyProcessed, Rejected, is_transient, schema_rejection
from services.runtime.unit_of_work import UnitOfWork

log = structlog.get_logger()

Handler = Callable[[Any, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    model: type[Contract]
    handler: Handler


class Settle(Enum):
    ACK = "ack"
    PARK = "park"  # reject without requeue: dead-lettered to the parking queue
    RETRY = "retry"  # reject with requeue: counts toward the delivery limit
    LATER = "later"  # nack with requeue: a transient fault outlasted the in-process retries


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
    ) -> None:
        self.service = service
        self._routes = routes
        self._pool = pool
        self._delivery_limit = delivery_limit
        self._transient_retry_seconds = transient_retry_seconds
        self._transient_backoff_max = transient_backoff_max
        self._in_hand: set[asyncio.Task[None]] = set()
        self._stopping = False

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
        pending = set(self._in_hand)
        if not pending:
            return True
        _, not_done = await asyncio.wait(pending, timeout=timeout)
        for task in not_done:
            task.cancel()
        await asyncio.gather(*not_done, return_exceptions=True)
        return not not_done

    async def _process(self, message: AbstractIncomingMessage) -> None:
        envelope = Envelope.of(message)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            service=self.service,
            routing_key=envelope.routing_key,
            message_id=envelope.message_id,
            correlation_id=envelope.correlation_id,
        )
        started = time.perf_counter()
        try:
            settle, outcome = await self._decide(envelope)
        except asyncio.CancelledError:
            log.warning("message_interrupted")
            raise
        await self._settle(message, settle, envelope)
        elapsed = time.perf_counter() - started
        metrics.MESSAGES.labels(self.service, envelope.routing_key, outcome.split(":")[0]).inc()
        metrics.HANDLING_SECONDS.labels(self.service, envelope.routing_key).observe(elapsed)
        log.info(
            "message_handled",
            outcome=outcome,
            settle=settle.value,
            delivery_count=envelope.delivery_count,
            duration_ms=round(elapsed * 1000, 2),
        )

    async def _decide(self, envelope: Envelope) -> tuple[Settle, str]:
        if envelope.delivery_count >= self._delivery_limit:
            failed = Rejected("processing_failed", f"handling failed {envelope.delivery_count} times; the message is parked")
            settle, _ = await self._refuse(envelope, failed, remember=False)
            return settle, "delivery_limit_reached"
        route = self._routes.get(envelope.routing_key)
        if route is None:
            return await self._refuse(envelope, Rejected("unknown_type", f"no handler for {envelope.routing_key!r}"))
        if not envelope.message_id:
            return await self._refuse(envelope, Rejected("missing_message_id", "the message_id property is required"))
        try:
            payload = json.loads(envelope.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return await self._refuse(envelope, Rejected("malformed_json", f"the body is not JSON: {error}"))
        try:
            command = route.model.model_validate(payload)
        except ValidationError as error:
            return await self._refuse(envelope, schema_rejection(error))
        try:
            await self._with_transient_retries(lambda: self._run_handler(route, command, envelope))
            return Settle.ACK, "done"
        except AlreadyProcessed:
            return Settle.ACK, "duplicate"
        except Rejected as rejection:
            settle, _ = await self._refuse(envelope, rejection, park=False)
            return settle, f"rejected:{rejection.reason}"
        except Exception as error:  # noqa: BLE001 - every fault ends in a settle decision
            if is_transient(error):
                log.warning("transient_fault_outlasted_retries", error=repr(error))
                return Settle.LATER, "transient_fault"
            log.exception("handler_failed")
            await asyncio.sleep(min(0.1 * 2**envelope.delivery_count, 5.0))
            return Settle.RETRY, "handler_failed"

    async def _run_handler(self, route: Route, command: Contract, envelope: Envelope) -> None:
        uow = UnitOfWork(self._pool, self.service, envelope)
        await route.handler(command, uow)
        if not uow.committed:
            raise RuntimeError(f"{route.handler.__name__} returned without committing its unit of work")

    async def _refuse(
        self, envelope: Envelope, rejection: Rejected, *, park: bool = True, remember: bool = True
    ) -> tuple[Settle, str]:
        """Publishes `command.rejected`, recorded in the inbox (so once per message_id) unless
        `remember` is off: a message parked after failing must take effect when replayed."""
        event = CommandRejected(
            command_id=envelope.message_id,
            type=envelope.routing_key or None,
            reason=rejection.reason,
            message=rejection.message,
            errors=rejection.errors,
        )
        log.info("message_refused", reason=rejection.reason)
        # Without an id a message cannot be recognised again; a parked one must work when replayed:
        # either way the refusal is recorded under an id of its own.
        claimable = envelope
        if not envelope.message_id or not remember:
            claimable = replace(envelope, message_id=f"refusal:{uuid.uuid4()}", correlation_id=envelope.causation_id)

        async def write() -> None:
            async with UnitOfWork(self._pool, self.service, claimable) as uow:
                uow.emit(event)

        try:
            await self._with_transient_retries(write)
        except AlreadyProcessed:
            pass
        except Exception as error:  # noqa: BLE001
            log.warning("refusal_not_recorded", error=repr(error))
            return Settle.LATER, "transient_fault"
        return (Settle.PARK if park else Settle.ACK), f"refused:{rejection.reason}"

    async def _with_transient_retries(self, attempt: Callable[[], Awaitable[None]]) -> None:
        async for retry in AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_delay(self._transient_retry_seconds) | (lambda _: self._stopping),
            wait=wait_exponential_jitter(multiplier=0.1, max=self._transient_backoff_max, jitter=0.1),
            reraise=True,
        ):
            with retry:
                await attempt()

    async def _settle(self, message: AbstractIncomingMessage, settle: Settle, envelope: Envelope) -> None:
        try:
            if settle is Settle.ACK:
                await message.ack()
            elif settle is Settle.PARK:
                await message.reject(requeue=False)
            elif settle is Settle.RETRY:
                await message.reject(requeue=True)
            else:
                await message.nack(requeue=True)
        except Exception as error:  # noqa: BLE001
            # The channel this came on is gone: the broker redelivers, and the inbox absorbs it.
            log.info("settle_failed_channel_gone", settle=settle.value, error=repr(error))
