"""One AMQP connection per process, rebuilt from scratch whenever it or a channel is lost.

aio-pika's robust connection can come back with channels restored but consumers gone;
rebuilding everything (channels, topology, consumers) on every loss makes "connected"
and "consuming" the same state."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from pamqp.commands import Basic

from contracts import routing
from userprov.broker_nodes import NoNodeAnswered, broker_urls, connect_first, node_of
from userprov.runtime import amqp_decoding, handoff, metrics, parking, tracing
from userprov.runtime.aio import first_of
from userprov.runtime.envelope import TAKEN_IN_PROCESS
from userprov.runtime.outbox import OutgoingMessage
from userprov.runtime.topology import declare_topology

log = structlog.get_logger()
amqp_decoding.install()

OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


def broker_failure(error: BaseException, url: str) -> str:
    """What a failure to connect to RabbitMQ means, in one line, without credentials."""
    if isinstance(error, NoNodeAnswered):
        return "no RabbitMQ node answered: " + "; ".join(broker_failure(e, node_url) for node_url, e in error.failures)
    parts = urlsplit(url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5672}"
    vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
    if isinstance(error, aiormq.exceptions.ProbableAuthenticationError):
        return f"RabbitMQ at {where} refused the login: check the user name and password in USERPROV_AMQP_URL"
    if isinstance(error, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(error):
        # the broker closed the connection it was asked to open on the vhost (aiormq loses its reply text here)
        return f"RabbitMQ at {where} refused to open vhost {vhost!r}: it does not exist, or the user has no permissions on it"
    if isinstance(error, aiormq.exceptions.ConnectionClosed):
        return f"RabbitMQ at {where} closed the connection: {error}"
    if isinstance(error, aiormq.exceptions.AMQPConnectionError | ConnectionError | OSError) and not isinstance(error, TimeoutError):
        return f"nothing takes connections at {where} (is RabbitMQ running there?): {error}"
    if isinstance(error, TimeoutError):
        return f"RabbitMQ at {where} did not answer in time"
    return f"RabbitMQ at {where}: {type(error).__name__}: {error}"


class BrokerUnavailable(ConnectionError):
    """No connection to RabbitMQ at the moment."""


@dataclass(frozen=True)
class ConsumerSpec:
    queue: str
    prefetch: int
    on_message: OnMessage


class BrokerSession:
    def __init__(self, url: str, consumers: Sequence[ConsumerSpec], delivery_limit: int, backoff_max: float) -> None:
        self.name = ",".join(spec.queue.removeprefix("userprov.") for spec in consumers) or "publisher"
        self._url = url  # one node, or several of a cluster (userprov.broker_nodes)
        self._next_node = 0
        self.node: str | None = None  # host:port of the node connected to now
        self._consumers = consumers
        self._delivery_limit = delivery_limit
        self._backoff_max = backoff_max
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._queues: list[tuple[ConsumerSpec, AbstractQueue]] = []  # of this connection
        self._consuming: list[tuple[AbstractQueue, str]] = []
        self._paused: set[str] = set()  # dependencies down (userprov.runtime.circuit): no new deliveries meanwhile
        self._reconciling = asyncio.Lock()
        self._exchanges: dict[str, tuple[AbstractChannel, AbstractExchange]] = {}
        self._lost = asyncio.Event()
        self._closing = asyncio.Event()
        self._consume = True
        self.ready = asyncio.Event()

    async def run(self) -> None:
        attempt, last_failure = 0, ""
        while not self._closing.is_set():
            try:
                await self._connect()
                attempt, last_failure = 0, ""
                await first_of(self._lost.wait(), self._closing.wait())
                if self._lost.is_set():
                    log.warning("broker_connection_lost")
            except (aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError) as error:
                reason = broker_failure(error, self._url)
                if reason != last_failure:  # one line per cause, not one per retry
                    log.error("broker_connect_failed", reason=reason, error_type=type(error).__name__, attempt=attempt)
                    last_failure = reason
                else:
                    log.debug("broker_connect_failed", reason=reason, attempt=attempt)
            finally:
                self.ready.clear()
                await self._drop_connection()
            if not self._closing.is_set():
                attempt += 1
                await first_of(asyncio.sleep(min(0.2 * 2**attempt, self._backoff_max)), self._closing.wait())

    async def _connect(self) -> None:
        self._lost.clear()
        connection, index = await connect_first(
            self._url, self._next_node, timeout=10, client_properties={"connection_name": f"userprov {self.name} pid={os.getpid()}"}
        )
        self._next_node = index + 1  # once this connection is lost, another node first
        self._connection = connection
        connection.close_callbacks.add(self._on_lost)
        self._publisher = await connection.channel(publisher_confirms=True)
        self._publisher.close_callbacks.add(self._on_lost)
        await declare_topology(connection, self._delivery_limit)
        self._consuming, self._queues = [], []
        if self._consume:
            for spec in self._consumers:
                channel = await connection.channel()
                channel.close_callbacks.add(self._on_lost)
                # A consumer the broker cancels (its queue deleted, for one) would leave a live
                # connection that consumes nothing: treat it as a lost connection and rebuild.
                (await channel.get_underlay_channel()).on_consumer_cancel_callbacks.add(self._on_consumer_cancelled)
                await channel.set_qos(prefetch_count=spec.prefetch)
                self._queues.append((spec, await channel.get_queue(spec.queue, ensure=False)))
            async with self._reconciling:
                if not self._paused:
                    await self._start_consumers()
        metrics.BROKER_CONNECTIONS.inc()
        self.node = node_of(broker_urls(self._url)[index])
        metrics.BROKER_NODE.clear()
        metrics.BROKER_NODE.labels(self.node).set(1)
        self.ready.set()
        log.info("broker_connected", node=self.node, consumers=[s.queue for s in self._consumers] if self._consume else [])

    async def _start_consumers(self) -> None:
        for spec, queue in self._queues:
            self._consuming.append((queue, await queue.consume(spec.on_message)))

    async def _cancel_consumers(self) -> None:
        consuming, self._consuming = self._consuming, []
        for queue, tag in consuming:
            try:
                await queue.cancel(tag)
            except Exception as error:  # noqa: BLE001
                log.warning("consumer_cancel_failed", error=repr(error))

    def pause(self, dependency: str, paused: bool) -> None:
        """No new deliveries while `dependency` is down (paused), again once it is back; what is
        in hand is finished either way."""
        if paused:
            self._paused.add(dependency)
        else:
            self._paused.discard(dependency)
        asyncio.get_running_loop().create_task(self._reconcile(), name="consumers")

    async def _reconcile(self) -> None:
        async with self._reconciling:
            try:
                if self._paused and self._consuming:
                    await self._cancel_consumers()
                    log.warning("consuming_paused", dependencies=sorted(self._paused))
                elif not self._paused and not self._consuming and self._queues and self.ready.is_set() and self._consume:
                    await self._start_consumers()
                    log.info("consuming_resumed")
            except Exception as error:  # noqa: BLE001 - the channel is lost: the reconnect consumes (or not) as paused
                log.warning("consumers_not_changed", error=repr(error))
                self._on_lost()

    @property
    def consuming(self) -> bool:
        """Connected, with every consumer registered, and not stopping (what /readyz reports)."""
        return self.ready.is_set() and self._consume and not self._closing.is_set()

    def _on_lost(self, *_: object) -> None:
        if not self._closing.is_set():
            self._lost.set()

    def _on_consumer_cancelled(self, *_: object) -> None:
        if self._consume:
            log.warning("consumer_cancelled_by_broker")
            self._on_lost()

    async def _drop_connection(self) -> None:
        connection, self._connection, self._publisher = self._connection, None, None
        self._consuming, self._queues = [], []
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception as error:  # noqa: BLE001 - it is going away either way
                log.debug("broker_close_failed", error=repr(error))

    async def stop_consuming(self) -> None:
        """basic.cancel on every consumer: no new deliveries; those in hand can still be acked."""
        self._consume = False
        async with self._reconciling:
            await self._cancel_consumers()

    async def queue_depths(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(messages, consumers) of each queue, by passive declare on a channel of its own (a
        missing queue closes that channel, never the publisher's); {} when not connected."""
        connection = self._connection
        if connection is None or connection.is_closed:
            return {}
        depths = {}
        channel = await connection.channel()
        try:
            for name in names:
                declared = await channel.declare_queue(name, passive=True)
                result = declared.declaration_result
                depths[name] = (int(result.message_count or 0), int(result.consumer_count or 0))
        finally:
            if not channel.is_closed:
                await channel.close()
        return depths

    async def close(self) -> None:
        self._closing.set()
        self.ready.clear()
        await self._drop_connection()

    async def publish(self, messages: Sequence[OutgoingMessage], wait_seconds: float = 10.0) -> None:
        """Publishes with publisher confirms; raises unless every message is confirmed. Signals and
        answers are mandatory (one that no queue takes is logged: the topology or the caller's
        queue is gone); public events are not: an event nobody subscribed to is no fault, and each
        return would cost both ends a frame."""
        try:
            await asyncio.wait_for(self.ready.wait(), wait_seconds)
        except TimeoutError as error:
            raise BrokerUnavailable("not connected to RabbitMQ") from error
        channel = self._publisher
        if channel is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        results = await asyncio.gather(*(self._publish_one(channel, m) for m in messages))
        for message, result in zip(messages, results, strict=True):
            if not isinstance(result, Basic.Ack):
                log.info("message_unroutable", routing_key=message.routing_key, message_id=message.message_id)

    async def park(self, message: AbstractIncomingMessage, service: str, why: parking.Why, trusted: bool) -> None:
        """Publishes the parked copy of `message` on the publisher channel (confirmed)."""
        channel = self._publisher
        if channel is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        await parking.park(channel, message, service, why, trusted)

    async def hand_off(self, message: AbstractIncomingMessage, trusted: bool) -> None:
        """Publishes `message` for the bulk lane on the publisher channel (confirmed)."""
        channel = self._publisher
        if channel is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        await handoff.hand_off(channel, message, trusted)

    async def _exchange(self, channel: AbstractChannel, name: str) -> AbstractExchange:
        if self._exchanges.get(name, (None,))[0] is not channel:
            self._exchanges[name] = (channel, await channel.get_exchange(name, ensure=False))
        return self._exchanges[name][1]

    async def _publish_one(self, channel: AbstractChannel, message: OutgoingMessage) -> object:
        exchange = channel.default_exchange if message.exchange == "" else await self._exchange(channel, message.exchange)
        with tracing.sending(message) as trace_headers:
            headers: dict[str, Any] = dict(trace_headers or {})
            if message.taken_in_process:
                headers[TAKEN_IN_PROCESS] = True
            return await exchange.publish(
                aio_pika.Message(
                    message.body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    type=message.type,
                    timestamp=datetime.now(UTC),
                    headers=headers,
                ),
                routing_key=message.routing_key,
                mandatory=message.exchange != routing.EVENTS_EXCHANGE,
                timeout=30,
            )

