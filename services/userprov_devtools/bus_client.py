"""A small client of userprov over RabbitMQ: publish commands and events, record every event,
ask queries. Used by the demo, the benchmark and the tests."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from contracts import routing
from contracts.registry import exchange_of
from userprov.broker_nodes import connect_first
from userprov.public_bus import amqp_user
from userprov.runtime import amqp_decoding

amqp_decoding.install()  # it records every event, including those a hostile publisher sent


@dataclass(frozen=True)
class RecordedEvent:
    routing_key: str
    body: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)  # when this client received it


class BusClient:
    def __init__(self, url: str, record: tuple[str, ...] = ("#",)) -> None:
        """`record`: the binding keys of the events to record (all by default)."""
        self._url = url
        self._user = amqp_user(url)
        self._record_keys = record
        self.events: list[RecordedEvent] = []
        self._by_key: dict[str, list[RecordedEvent]] = {}
        # (routing key, field): the events of that key by the field's value, made when first asked for
        self._by_field: dict[tuple[str, str], dict[Any, list[RecordedEvent]]] = {}
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._replies: dict[str, asyncio.Future[RecordedEvent]] = {}
        self._reply_queue: AbstractQueue | None = None
        self._lost: list[AbstractConnection] = []

    async def start(self) -> None:
        self._connection, _ = await connect_first(self._url)
        self._connection.close_callbacks.add(self._on_lost)
        self._channel = await self._connection.channel()
        events = await self._channel.declare_exchange(routing.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await self._channel.declare_exchange(routing.COMMANDS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True,
                                             arguments={"alternate-exchange": routing.UNROUTED_COMMANDS_EXCHANGE})
        internal = await self._channel.declare_exchange(routing.INTERNAL_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await self._channel.declare_exchange(routing.RESPONSES_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        recorder = await self._channel.declare_queue(exclusive=True)
        for key in self._record_keys:
            await recorder.bind(events, key)
            await recorder.bind(internal, key)  # an operator's view: userprov's own hand-offs too
        await recorder.consume(self._record, no_ack=True)
        self._reply_queue = await self._channel.declare_queue(exclusive=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close_callbacks.discard(self._on_lost)
            await connection.close()
        lost, self._lost = self._lost, []
        for old in lost:
            with contextlib.suppress(Exception):
                await old.close()

    def _on_lost(self, *_: object) -> None:
        if self._connection is not None:
            self._lost.append(self._connection)  # closed at stop, so that its tasks end with it
        self._connection = self._channel = None

    async def _connected(self) -> AbstractChannel:
        """The channel, reconnecting (with a new recorder) after the connection was lost;
        events published while it was down are not recorded."""
        if self._channel is None:
            await self.start()
        assert self._channel is not None
        return self._channel

    async def _record(self, message: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
        except (ValueError, RecursionError):
            body = {"_raw": message.body[:1000].decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"_raw": repr(body)[:1000]}
        event = RecordedEvent(message.routing_key or "", body, message.message_id, message.correlation_id, dict(message.headers or {}))
        self.events.append(event)
        self._by_key.setdefault(event.routing_key, []).append(event)
        for (routing_key, key), index in self._by_field.items():
            if routing_key == event.routing_key:
                _add(index, event, key)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._replies.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(RecordedEvent(message.type or "", json.loads(message.body), message.message_id, message.correlation_id,
                                            dict(message.headers or {})))

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        exchange: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Publishes the body as given; returns its message_id (a new one unless given: aiormq
        gives every message an id, so a message without one cannot be sent from here)."""
        channel = await self._connected()
        message_id = message_id or str(uuid.uuid4())
        exchange = exchange or exchange_of(routing_key)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                message_id=message_id,
                correlation_id=correlation_id,
                reply_to=reply_to,
                type=routing_key,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=headers,
                user_id=self._user,  # RabbitMQ checks it: userprov may trust it (USERPROV_TRUSTED_PUBLISHERS)
            ),
            routing_key=routing_key,
        )
        return message_id

    async def publish(self, routing_key: str, body: dict[str, Any], **kwargs: Any) -> str:
        return await self.publish_raw(routing_key, json.dumps(body).encode(), **kwargs)

    async def query(self, routing_key: str, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """The answer's body (a `command.rejected` body when the query was refused)."""
        return (await self.ask(routing_key, json.dumps(body).encode(), timeout=timeout)).body

    async def ask(self, routing_key: str, body: bytes, *, timeout: float = 10.0, **properties: Any) -> RecordedEvent:
        """Publishes a query (its body as given) and waits for the answer, whose `routing_key`
        is the answer's AMQP type: `<query>.reply`, or `command.rejected`."""
        await self._connected()
        assert self._reply_queue is not None
        correlation_id = properties.pop("correlation_id", None) or str(uuid.uuid4())
        future: asyncio.Future[RecordedEvent] = asyncio.get_running_loop().create_future()
        self._replies[correlation_id] = future
        await self.publish_raw(routing_key, body, correlation_id=correlation_id, reply_to=self._reply_queue.name, **properties)
        return await asyncio.wait_for(future, timeout)

    @property
    def reply_queue(self) -> str:
        assert self._reply_queue is not None
        return self._reply_queue.name

    async def wait_for_workers(self, timeout: float = 60.0, every: float = 0.25) -> None:
        """Until a worker answers a query: on a new vhost, queries published before the workers
        declared their queues are unroutable and lost, so ask again every `every` seconds; an
        answer to any of them will do (a slow one is not given up on when the next is asked)."""
        await self._connected()
        assert self._reply_queue is not None
        deadline = time.monotonic() + timeout
        asked: list[asyncio.Future[RecordedEvent]] = []
        try:
            while True:
                correlation_id = str(uuid.uuid4())
                asked.append(future := asyncio.get_running_loop().create_future())
                self._replies[correlation_id] = future
                await self.publish_raw(routing.ACCOUNTS_GET, json.dumps({"account_id": "ping"}).encode(),
                                       correlation_id=correlation_id, reply_to=self._reply_queue.name)
                done, _ = await asyncio.wait(asked, timeout=min(every, max(deadline - time.monotonic(), 0)),
                                             return_when=asyncio.FIRST_COMPLETED)
                if done:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no worker answered within {timeout} s")
        finally:
            for correlation_id in [c for c, f in self._replies.items() if f in asked]:
                del self._replies[correlation_id]

    def find(self, routing_key: str, **match: Any) -> list[RecordedEvent]:
        """The events of the routing key whose fields (or correlation_id) have these values, in the
        order they came. Looked up by the first field's value: tests poll this many times a second,
        beside tens of thousands of events of a key."""
        candidates: list[RecordedEvent] = self._by_key.get(routing_key, [])
        if match:
            key, value = next(iter(match.items()))
            if _hashable(value):
                index = self._by_field.get((routing_key, key))
                if index is None:
                    index = self._by_field[(routing_key, key)] = {}
                    for event in candidates:
                        _add(index, event, key)
                candidates = index.get(value, [])
        return [e for e in list(candidates) if all(_get(e, k) == v for k, v in match.items())]


def _get(event: RecordedEvent, key: str) -> Any:
    if key == "correlation_id":
        return event.correlation_id
    return event.body.get(key)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _add(index: dict[Any, list[RecordedEvent]], event: RecordedEvent, key: str) -> None:
    value = _get(event, key)
    if _hashable(value):  # a list or an object never equals a value one can look up by
        index.setdefault(value, []).append(event)
