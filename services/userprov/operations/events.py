"""`userprov events`: the messages on `userprov.events`, as one JSON object per line, from a
queue of its own (exclusive, gone with the connection) bound to the routing keys asked for."""
from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from contracts import routing
from contracts.text import printable
from userprov.broker_nodes import connect_first

# a token lets whoever holds it answer the person's invitation: link handlers that still send
# accepts and declines on userprov.events (deprecated) must not have them copied into terminals
_TOKEN_BEARING = (routing.INVITATION_ACCEPTED, routing.INVITATION_DECLINED)
# kept by json.dumps(ensure_ascii=False) but unsafe for a terminal (C1 controls, bidi overrides)
# or for UTF-8 (lone surrogates, which a JSON escape may hold): written as \u escapes instead
_ESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


class ConnectionLost(Exception):
    """The broker closed the connection: events from then on were not seen."""


def event_line(message: AbstractIncomingMessage) -> str:
    """One message as one line of JSON: routing key, ids, type, timestamp and body (parsed when
    it is JSON, else `body_text`); a token is replaced by `"<hidden>"`."""
    line: dict[str, Any] = {
        "routing_key": message.routing_key,
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
    }
    try:
        body = json.loads(message.body)
    except ValueError:
        line["body_text"] = printable(message.body.decode("utf-8", "replace"), 10_000)
    else:
        if message.routing_key in _TOKEN_BEARING and isinstance(body, dict) and "token" in body:
            body["token"] = "<hidden>"
        line["body"] = body
    text = json.dumps(line, ensure_ascii=False)
    return _ESCAPED.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


async def tail(amqp_url: str, keys: Sequence[str], show: Callable[[str], None], *, count: int | None, timeout: float | None,
               listening: Callable[[], None], stop: asyncio.Event, on_waiting: Callable[[], None] = lambda: None) -> int:
    """Shows each event until `count` were shown, `timeout` seconds passed or `stop` is set; the
    number shown. `listening` is called once the queue is bound: later events are all seen;
    `on_waiting`, once, when the exchange is not there yet (no worker has declared it on the vhost)."""
    connection, _ = await connect_first(amqp_url, timeout=10, client_properties={"connection_name": "userprov events"})
    lost = asyncio.Event()
    connection.close_callbacks.add(lambda *_: lost.set())
    shown = 0
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        channel = await _channel_with_the_exchange(connection, stop, deadline, on_waiting)
        if channel is None:
            return shown
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        exchange = await channel.get_exchange(routing.EVENTS_EXCHANGE, ensure=False)
        for key in dict.fromkeys(keys or ("#",)):
            await queue.bind(exchange, key)
        received: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(received.put, no_ack=True)
        listening()
        while count is None or shown < count:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0 or stop.is_set():
                break
            next_one = asyncio.ensure_future(received.get())
            waits = [next_one, asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            done, pending = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
            if next_one in done:
                show(event_line(next_one.result()))
                shown += 1
            elif lost.is_set() and not stop.is_set():
                raise ConnectionLost("RabbitMQ closed the connection: events from now on are not seen")
    finally:
        if not connection.is_closed:
            await connection.close()
    return shown


async def _channel_with_the_exchange(connection: AbstractConnection, stop: asyncio.Event, deadline: float | None,
                                     waiting: Callable[[], None], every: float = 0.5) -> AbstractChannel | None:
    """A channel, once `userprov.events` exists (the workers declare it when they start, which may
    be after this command); None when the deadline passed or `stop` was set first."""
    loop = asyncio.get_running_loop()
    told = False
    while not stop.is_set():
        channel = await connection.channel()
        try:
            await channel.get_exchange(routing.EVENTS_EXCHANGE, ensure=True)  # a passive declare
            return channel
        except aiormq.exceptions.ChannelNotFoundEntity:  # the broker closed that channel
            if not told:
                waiting()
                told = True
        if deadline is not None and loop.time() + every >= deadline:
            return None
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
    return None
