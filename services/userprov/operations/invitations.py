"""Failed invitations for operators, through userprov's public interface like any integrator:
the `invitations.failed` query and the `invitations.retry_failed` command, whose outcome is
read back with `commands.get`."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from contracts import routing
from contracts.base import Contract
from contracts.commands import InvitationsRetryFailed
from contracts.queries import CommandsGet, CommandsGetReply, FailedInvitation, InvitationsFailed, InvitationsFailedReply
from userprov.runtime.broker import amqp_user


class NoAnswer(Exception):
    """userprov did not answer in time: are its workers running on this vhost?"""


@dataclass(frozen=True)
class Retried:
    command_id: str
    retried: int | None  # None when the command was refused
    refusal: str | None = None


class _Bus:
    def __init__(self, channel: AbstractChannel, replies: AbstractQueue, user: str) -> None:
        self._channel = channel
        self._user = user  # set as user_id: an operator in USERPROV_TRUSTED_PUBLISHERS acts as the platform
        self._replies = replies
        self._waiting: dict[str, asyncio.Future[bytes]] = {}

    async def start(self) -> None:
        await self._replies.consume(self._answered, no_ack=True)

    async def _answered(self, message: AbstractIncomingMessage) -> None:
        waiting = self._waiting.pop(message.correlation_id or "", None)
        if waiting is not None and not waiting.done():
            waiting.set_result(message.body)

    async def publish(self, routing_key: str, message: Contract, message_id: str | None = None, reply: bool = False) -> str:
        """Confirmed and mandatory (a key no queue takes is refused by userprov, not lost)."""
        message_id = message_id or str(uuid.uuid4())
        exchange = await self._channel.get_exchange(routing.COMMANDS_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(message.model_dump_json(exclude_none=True).encode(), message_id=message_id, correlation_id=message_id,
                             type=routing_key, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             reply_to=self._replies.name if reply else None, user_id=self._user),
            routing_key, mandatory=True,
        )
        return message_id

    async def ask(self, routing_key: str, query: Contract, timeout: float) -> bytes:
        message_id = str(uuid.uuid4())
        answer = self._waiting[message_id] = asyncio.get_running_loop().create_future()
        try:
            await self.publish(routing_key, query, message_id, reply=True)
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise NoAnswer(f"no answer to {routing_key} within {timeout:g} s: are userprov's workers running on this vhost?") from None
        finally:
            self._waiting.pop(message_id, None)


@asynccontextmanager
async def _bus(amqp_url: str) -> AsyncIterator[_Bus]:
    connection = await aio_pika.connect(amqp_url, timeout=10, client_properties={"connection_name": "userprov invitations"})
    try:
        channel = await connection.channel(publisher_confirms=True)
        bus = _Bus(channel, await channel.declare_queue(exclusive=True, auto_delete=True), amqp_user(amqp_url))
        await bus.start()
        yield bus
    finally:
        await connection.close()


async def failed(amqp_url: str, account_id: str | None, limit: int, timeout: float = 10.0) -> list[FailedInvitation]:
    """Up to `limit` people whose latest invitation failed, oldest failure first, page by page."""
    found: list[FailedInvitation] = []
    after = None
    async with _bus(amqp_url) as bus:
        while len(found) < limit:
            query = InvitationsFailed(account_id=account_id, after=after, limit=min(1000, limit - len(found)))
            page = InvitationsFailedReply.model_validate_json(await bus.ask(routing.INVITATIONS_FAILED, query, timeout))
            found.extend(page.invitations)
            if page.next_after is None:
                break
            after = page.next_after
    return found


async def retry_failed(amqp_url: str, account_id: str | None, timeout: float = 60.0) -> Retried:
    """Publishes invitations.retry_failed (confirmed, mandatory) and waits for its outcome."""
    async with _bus(amqp_url) as bus:
        command_id = await bus.publish(routing.INVITATIONS_RETRY_FAILED, InvitationsRetryFailed(account_id=account_id, requested_by=None))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            outcome = CommandsGetReply.model_validate_json(
                await bus.ask(routing.COMMANDS_GET, CommandsGet(command_id=command_id), max(deadline - time.monotonic(), 0.1))
            )
            if outcome.found:
                for event in outcome.events:
                    if event.type == routing.INVITATIONS_RETRIED:
                        return Retried(command_id, int(event.body["retried"]))
                    if event.type == routing.COMMAND_REJECTED:
                        return Retried(command_id, None, f"{event.body.get('reason')}: {event.body.get('message')}")
            await asyncio.sleep(0.2)
    raise NoAnswer(f"invitations.retry_failed {command_id} had no outcome within {timeout:g} s; ask commands.get later")
