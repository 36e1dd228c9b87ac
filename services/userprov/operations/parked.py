"""Working with parked messages: list, show, replay, purge.

A parking queue is read by basic.get without ack: every message taken stays the tool's until it
is acked (replayed or purged) or the channel closes, which puts the rest back in order. At most
as many messages as the queue held at the start are taken, so a replayed message that fails
and parks again is not taken twice in one run."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from contracts import routing
from contracts.text import printable
from userprov.broker_nodes import connect_first
from userprov.masking import mask_emails_in
from userprov.public_bus import amqp_user
from userprov.runtime import amqp_decoding
from userprov.runtime.parking import ParkedMessage, publish_confirmed, replay_copy

amqp_decoding.install()  # parked messages include those whose properties are not UTF-8

Held = tuple[ParkedMessage, AbstractIncomingMessage]


class NoParkingQueue(LookupError):
    """The broker has no such parking queue: most likely the wrong vhost."""


@dataclass(frozen=True)
class Selection:
    """Which parked messages a replay or purge acts on: the ids given, or those matching every
    filter given, or all of them when `everything` is set."""
    ids: frozenset[str] = frozenset()
    routing_key: str | None = None
    reason: str | None = None
    everything: bool = False

    @property
    def says_which(self) -> bool:
        return bool(self.ids or self.routing_key or self.reason or self.everything)

    def matches(self, parked: ParkedMessage) -> bool:
        if self.everything:
            return True
        return (
            (not self.ids or parked.id in self.ids)
            and (self.routing_key is None or parked.routing_key == self.routing_key)
            and (self.reason is None or parked.reason == self.reason)
        )


@dataclass
class Outcome:
    parked: ParkedMessage
    result: str  # replayed, would replay, purged, kept, failed: ...


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(o.result.startswith("failed") for o in self.outcomes)


@asynccontextmanager
async def _channel(amqp_url: str) -> AsyncIterator[tuple[AbstractConnection, AbstractChannel]]:
    connection, _ = await connect_first(amqp_url, timeout=10, client_properties={"connection_name": "userprov parked"})
    try:
        yield connection, await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()  # whatever is still held goes back to its parking queue


async def _take(channel: AbstractChannel, services: Sequence[str], limit: int | None = None) -> AsyncIterator[Held]:
    """Each parked message, taken and held unacked until the channel closes. A caller keeps only
    what it still needs: a message it drops stays held on the broker's side, not in memory."""
    taken = 0
    for service in services:
        name = routing.parking_queue_name(service)
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as error:
            raise NoParkingQueue(f"there is no queue {name}: is USERPROV_AMQP_URL the workers' (with their vhost)?") from error
        depth = int(queue.declaration_result.message_count or 0)
        for _ in range(depth if limit is None else min(depth, max(limit - taken, 0))):
            message = await queue.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            taken += 1
            yield ParkedMessage.of(message, service), message


# refusals of the message as it was sent: replayed unchanged, it is refused and parked again
REFUSED_AS_SENT = frozenset({"malformed_json", "schema_invalid", "invalid_properties", "missing_message_id", "missing_reply_to"})


async def list_parked(amqp_url: str, services: Sequence[str], limit: int, selection: Selection | None = None) -> list[ParkedMessage]:
    """Up to `limit` parked messages (of those `selection` matches, when given)."""
    found: list[ParkedMessage] = []
    async with _channel(amqp_url) as (_, channel):
        async for parked, _ in _take(channel, services):
            if selection is None or selection.matches(parked):
                found.append(parked)
                if len(found) >= limit:
                    break
    return found


async def show(amqp_url: str, services: Sequence[str], message_id: str) -> list[dict[str, Any]]:
    """Every parked message with that id (a message can be parked twice), emails masked."""
    async with _channel(amqp_url) as (_, channel):
        return [
            {
                "service": parked.service,
                "properties": _masked_properties(message),
                "headers": _shown(message.headers or {}),
                "body": _masked_body(message.body),
            }
            async for parked, message in _take(channel, services)
            if parked.id == message_id
        ]


async def replay(amqp_url: str, services: Sequence[str], selection: Selection, *, dry_run: bool) -> Report:
    """Publishes each selected message to where it was first published, with its message_id (the
    inbox makes a message that already took effect a duplicate); the parked copy is acked only
    after the broker confirmed the republished one."""
    report = Report()
    async with _channel(amqp_url) as (connection, channel):
        exchanges: dict[str, bool] = {"": True}
        async for parked, message in _take(channel, services):
            if not selection.matches(parked):
                continue
            refusal = parked.replay_refusal()
            if refusal is None and parked.exchange not in exchanges:
                exchanges[parked.exchange] = await _exchange_exists(connection, parked.exchange)
            if refusal is not None:
                report.outcomes.append(Outcome(parked, f"failed: {refusal}"))
            elif not exchanges[parked.exchange]:
                # publishing to it would close the channel, and give back every message held on it
                report.outcomes.append(Outcome(parked, f"failed: there is no exchange {parked.exchange!r}"))
            elif dry_run:
                again = f" (warning: it was refused as {parked.reason}; unchanged, it would be refused again)"
                report.outcomes.append(Outcome(parked, "would replay" + (again if parked.reason in REFUSED_AS_SENT else "")))
            else:
                try:
                    await publish_confirmed(channel, parked.exchange, parked.routing_key, replay_copy(message, parked, amqp_user(amqp_url)))
                except Exception as error:  # noqa: BLE001 - the parked copy stays; the report says why
                    report.outcomes.append(Outcome(parked, f"failed: {printable(str(error), 200)}"))
                    continue
                try:
                    await message.ack()
                except Exception as error:  # noqa: BLE001 - the channel died between the confirm and the ack
                    report.outcomes.append(Outcome(parked, f"failed: replayed, but its parked copy is still parked"
                                                           f" ({printable(str(error) or type(error).__name__, 200)});"
                                                           " replaying it again takes no second effect"))
                    break  # the channel is gone, and with it what this run held: all of it is back in its queue
                report.outcomes.append(Outcome(parked, "replayed"))
    return report


async def _exchange_exists(connection: AbstractConnection, name: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.get_exchange(name, ensure=True)  # a passive declare
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


async def purge(amqp_url: str, services: Sequence[str], selection: Selection, confirm: Callable[[int], bool]) -> Report:
    """Deletes the selected messages once `confirm` (given how many) agrees; none otherwise."""
    report = Report()
    async with _channel(amqp_url) as (_, channel):
        chosen = [(p, m) async for p, m in _take(channel, services) if selection.matches(p)]
        if not chosen or not confirm(len(chosen)):
            report.outcomes = [Outcome(p, "kept") for p, _ in chosen]
            return report
        for parked, message in chosen:
            await message.ack()
            report.outcomes.append(Outcome(parked, "purged"))
    return report


def _masked_properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    return _shown({
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "reply_to": message.reply_to,
        "content_type": message.content_type,
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
        "app_id": message.app_id,
    })


def _masked_body(body: bytes) -> Any:
    try:
        return _shown(json.loads(body))
    except (ValueError, RecursionError):
        return _shown(body)


def _shown(value: Any) -> Any:
    """A value as `show` prints it: JSON types only, every text printable (a body can hold lone
    surrogates, which no terminal encoding takes), bounded, with addresses masked."""
    if isinstance(value, dict):
        return {_shown(str(k)): _shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return mask_emails_in(printable(value, 10_000))
    if value is None or isinstance(value, bool | int | float):
        return value
    return _shown(str(value))
