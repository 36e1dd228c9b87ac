"""A client of userprov's public interface over RabbitMQ, for its front doors (the invitation
page) and operators' commands: only what an integrator or a link handler may do with the
permissions of docs/reference/wire.md. It publishes commands, queries and responses with confirms and
`mandatory`, waits for a query's answer on a queue of its own, and, when asked to watch
events, for the first event that carries a given correlation id. It knows the contracts,
never a worker's tables, SQL or lifecycle.

Each call has one deadline for all of it: connecting when not connected, the publish and its
confirm, and the answer. While RabbitMQ blocks the connection (`connection.blocked`: a memory or
disk alarm), a publish would wait for its confirm until the alarm ends: it fails at once instead
(`Blocked`), sending nothing."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from contracts import routing
from contracts.base import Contract
from contracts.queries import CommandsGet, CommandsGetReply, OutcomeEvent
from contracts.registry import exchange_of
from userprov.broker_nodes import broker_urls, connect_first, node_of

CONNECT_SECONDS = 10.0  # connecting, opening the channel and declaring the reply queues, when nothing shorter bounds it
PUBLISH_SECONDS = 10.0  # a publish and its confirm, when the caller gives no deadline


class NoAnswer(Exception):
    """userprov did not answer in time: are its workers running on this vhost?"""


class Blocked(NoAnswer):
    """RabbitMQ blocks publishing on this connection (a memory or disk alarm): nothing was sent."""

    def __init__(self) -> None:
        super().__init__("RabbitMQ blocks publishing (a memory or disk alarm): nothing was sent; retry later")


@asynccontextmanager
async def _within(timeout: float, what: str) -> AsyncIterator[None]:
    """One deadline for everything inside; NoAnswer(what) when it runs out. (A shorter deadline
    inside that runs out, connecting's, stays a TimeoutError of its own.)"""
    try:
        async with asyncio.timeout(timeout) as deadline:
            yield
    except TimeoutError:
        if deadline.expired():
            raise NoAnswer(what) from None
        raise


def publishing_blocked(connection: AbstractConnection) -> bool:
    """Whether RabbitMQ said `connection.blocked` on this connection and not yet `unblocked`.
    aiormq announces the capability (RabbitMQ tells only clients that do) and keeps the state,
    but only in a private event of its connection, read here; were it renamed, this says False
    and a publish waits for its deadline instead of failing at once."""
    underlay = connection.transport
    unblocked = getattr(underlay.connection, "_Connection__connection_unblocked", None) if underlay is not None else None
    return isinstance(unblocked, asyncio.Event) and not unblocked.is_set()


def amqp_user(url: str) -> str:
    """The RabbitMQ user of an AMQP URL (the first node's, when it names several): what a
    publisher on it sets as `user_id`."""
    return unquote(urlsplit(broker_urls(url)[0]).username or "guest")


@dataclass(frozen=True)
class Received:
    type: str  # the AMQP type: an answer's `<query>.reply` or `command.rejected`, an event's routing key
    body: bytes


# Who acts through the door now (a SCIM request's token id): said on what the door publishes for
# it (x-userprov-actor), for the audit trail. A context variable of the request's task.
acting: ContextVar[str | None] = ContextVar("public_bus_acting", default=None)


class PublicBus:
    def __init__(self, amqp_url: str, name: str, events: Sequence[str] = (), door: str | None = None) -> None:
        """`events`: the routing keys on `userprov.events` whose messages `expect` may wait for.
        `door`: the front door publishing (scim, links, cli), said on every message (x-userprov-via)
        for the audit trail; the workers believe it only from a trusted publisher."""
        self._door = door
        self._url = amqp_url
        self._name = name
        self._events = tuple(events)
        self._user = amqp_user(amqp_url)  # set as user_id: RabbitMQ checks it, userprov may trust it
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._replies: AbstractQueue | None = None
        self._waiting: dict[str, asyncio.Future[Received]] = {}
        self._connecting = asyncio.Lock()
        self._next_node = 0
        self.node: str | None = None  # host:port of the RabbitMQ node connected to now

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    @property
    def blocked(self) -> bool:
        """Connected, and RabbitMQ blocks publishing on the connection (RabbitMQ says so once the
        connection publishes during an alarm, and again when the alarm ends)."""
        connection = self._connection
        return connection is not None and not connection.is_closed and publishing_blocked(connection)

    async def start(self, timeout: float = CONNECT_SECONDS) -> None:
        """Connects (again, after the connection was lost): a reply queue and, for the watched
        events, a queue of its own bound to them; both go with the connection. TimeoutError
        after `timeout`."""
        async with asyncio.timeout(timeout), self._connecting:
            if self.connected:
                return
            connection, index = await connect_first(self._url, self._next_node, timeout=timeout,
                                                    client_properties={"connection_name": self._name})
            self._next_node, self.node = index + 1, node_of(broker_urls(self._url)[index])
            try:
                channel = await connection.channel(publisher_confirms=True)
                replies = await channel.declare_queue(exclusive=True, auto_delete=True)
                await replies.consume(self._received, no_ack=True)
                if self._events:
                    watched = await channel.declare_queue(exclusive=True, auto_delete=True)
                    events = await channel.get_exchange(routing.EVENTS_EXCHANGE, ensure=False)
                    for key in self._events:
                        await watched.bind(events, key)
                    await watched.consume(self._received, no_ack=True)
            except BaseException:
                await connection.close()
                raise
            connection.close_callbacks.add(self._lost)
            self._connection, self._channel, self._replies = connection, channel, replies

    def _lost(self, *_: object) -> None:
        self._connection = self._channel = self._replies = None

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close_callbacks.discard(self._lost)
            await connection.close()
        self._channel = self._replies = None

    async def _received(self, message: AbstractIncomingMessage) -> None:
        waiting = self._waiting.pop(message.correlation_id or "", None)
        if waiting is not None and not waiting.done():
            waiting.set_result(Received(message.type or message.routing_key or "", message.body))

    async def publish(self, routing_key: str, message: Contract, *, message_id: str | None = None,
                      correlation_id: str | None = None, timeout: float = PUBLISH_SECONDS) -> str:
        """Confirmed and mandatory, on the exchange the routing key belongs to; returns the message_id.
        The fields the caller set are sent, a null included (`users.update`'s `external_id: null`
        clears it), and no other. Blocked at once while RabbitMQ blocks publishing; NoAnswer when
        it did not confirm within `timeout` (connecting included)."""
        async with _within(timeout, f"RabbitMQ did not confirm {routing_key} within {timeout:g} s"):
            return await self._publish(routing_key, message, message_id=message_id, correlation_id=correlation_id)

    async def _publish(self, routing_key: str, message: Contract, *, message_id: str | None = None,
                       correlation_id: str | None = None, reply: bool = False) -> str:
        """`publish` within the caller's deadline."""
        if not self.connected:
            await self.start()
        if self.blocked:
            raise Blocked
        assert self._channel is not None and self._replies is not None
        message_id = message_id or str(uuid.uuid4())
        exchange = await self._channel.get_exchange(exchange_of(routing_key), ensure=False)
        headers: dict[str, Any] = {routing.VIA_HEADER: self._door} if self._door else {}
        if self._door and acting.get():
            headers[routing.ACTOR_HEADER] = acting.get()
        await exchange.publish(
            aio_pika.Message(message.model_dump_json(exclude_unset=True).encode(), message_id=message_id, headers=headers,
                             correlation_id=correlation_id or message_id, type=routing_key, content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT, reply_to=self._replies.name if reply else None,
                             user_id=self._user),
            routing_key, mandatory=True,
        )
        return message_id

    def expect(self, correlation_id: str) -> asyncio.Future[Received]:
        """Resolves with the first answer or watched event that carries the correlation id."""
        future = self._waiting[correlation_id] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, correlation_id: str) -> None:
        self._waiting.pop(correlation_id, None)

    async def command(self, routing_key: str, message: Contract, timeout: float) -> Received:
        """Publishes a command (or a response) and waits for the first watched event that carries
        its id: its outcome. NoAnswer when `timeout` ran out, connecting, publishing or waiting."""
        message_id = str(uuid.uuid4())
        outcome = self.expect(message_id)
        try:
            async with _within(timeout, f"no outcome of {routing_key} within {timeout:g} s"):
                await self._publish(routing_key, message, message_id=message_id)
                return await outcome
        finally:
            self.forget(message_id)

    async def ask(self, routing_key: str, query: Contract, timeout: float) -> Received:
        """The answer to a query: its type says an answer (`<query>.reply`) from a refusal.
        NoAnswer when `timeout` ran out, connecting, publishing or waiting."""
        message_id = str(uuid.uuid4())
        answer = self.expect(message_id)
        try:
            async with _within(timeout, f"no answer to {routing_key} within {timeout:g} s: are userprov's workers running on this vhost?"):
                await self._publish(routing_key, query, message_id=message_id, reply=True)
                return await answer
        finally:
            self.forget(message_id)

    async def outcome(self, command_id: str, timeout: float, poll_seconds: float = 0.2) -> OutcomeEvent:
        """The first event the command's handling published (`command.rejected` when it was
        refused), read with `commands.get` until it has one; NoAnswer after `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            answer = await self.ask(routing.COMMANDS_GET, CommandsGet(command_id=command_id), max(left, 0.1))
            if answer.type == routing.COMMAND_REJECTED:
                raise NoAnswer(f"commands.get was refused: {answer.body.decode(errors='replace')}")
            found = CommandsGetReply.model_validate_json(answer.body)
            if found.found and found.events:
                return found.events[0]
            await asyncio.sleep(poll_seconds)
        raise NoAnswer(f"command {command_id} had no outcome within {timeout:g} s; ask commands.get later")

