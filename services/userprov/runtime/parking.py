"""The parked copy of a message: the original body and properties, plus headers that say why
it was parked, where it came from, and since when it fails. Written by the dispatcher, read by
`userprov parked`; the one definition of that header format.

A message RabbitMQ dead-lettered by itself (a worker died on it at every delivery, so the
queue's delivery limit parked it) has no such headers; its `x-death` header says what the
broker knows, and `ParkedMessage.of` reads either."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractMessage
from pamqp import encode
from pamqp.commands import Basic

from contracts import routing
from contracts.registry import subscriptions
from contracts.text import printable
from userprov.masking import mask_emails_in
from userprov.runtime.envelope import ACTOR, ORIGINAL_PUBLISHER, ORIGINAL_TRUSTED, ORIGINAL_USER, TRUSTED_PUBLISHER, VIA

PREFIX = "x-userprov-"
SERVICE = PREFIX + "service"
REASON = PREFIX + "reason"
ERROR_TYPE = PREFIX + "error-type"
ERROR_MESSAGE = PREFIX + "error-message"
ATTEMPTS = PREFIX + "attempts"
FIRST_FAILURE = PREFIX + "first-failure"
LAST_FAILURE = PREFIX + "last-failure"
EXCHANGE = PREFIX + "exchange"
ROUTING_KEY = PREFIX + "routing-key"
REPLAYS = PREFIX + "replays"  # how often this message was replayed from a parking queue before
# The original had no message_id (the client library gives the parked copy a random one):
# a replay of it could not be recognised, so it would take effect. It is never replayed.
NO_MESSAGE_ID = PREFIX + "no-message-id"

# What the broker sets and a republished copy must not carry: a stale delivery count would
# count toward the delivery limit again; the death history belongs to the parked copy.
_BROKER_HEADERS = ("x-delivery-count", "x-death", "x-first-death-exchange", "x-first-death-queue",
                   "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")
# Kept when a message is replayed, so that it still says when it first failed if it parks again,
# and, for its audit entries, who acted through which door (believed only from a trusted
# publisher, and from a replay only when its original was trusted: userprov.audit.actors).
_KEPT_ON_REPLAY = (FIRST_FAILURE, REPLAYS, VIA, ACTOR, ORIGINAL_USER)


@dataclass(frozen=True)
class Why:
    """Why a message is parked."""
    reason: str  # the command.rejected reason code, e.g. schema_invalid, processing_failed
    error_type: str  # the exception type, or "Rejected" for a refusal
    error_message: str
    attempts: int  # deliveries the handler (or the edge) saw
    first_failure: datetime | None = None  # from the recorded failures; now when unknown


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def park_headers(message: AbstractMessage, service: str, why: Why, now: datetime, trusted: bool) -> dict[str, Any]:
    """The headers of the parked copy. What a publisher wrote under userprov's prefix is dropped
    (but for what a replay carries, which only informs): only userprov says why and where from.
    `trusted`: whether the worker judged its publisher trusted, which a replay keeps
    (userprov.runtime.publisher)."""
    headers = publisher_headers(message)
    # a replayed message that failed again keeps its first failure (if that header is a time)
    first = _time(headers.get(FIRST_FAILURE)) or iso(why.first_failure or now)
    exchange = getattr(message, "exchange", None)
    headers.update({
        SERVICE: service,
        REASON: why.reason,
        ERROR_TYPE: printable(why.error_type, 200),
        ERROR_MESSAGE: mask_emails_in(printable(why.error_message, 1000)),
        ATTEMPTS: why.attempts,
        FIRST_FAILURE: first,
        LAST_FAILURE: iso(now),
        EXCHANGE: exchange if isinstance(exchange, str) else "",
        ROUTING_KEY: getattr(message, "routing_key", None) or "",
        ORIGINAL_TRUSTED: trusted,
    })
    with_original_user(message, headers)
    if not message.message_id:
        headers[NO_MESSAGE_ID] = True
    return headers


def copy_of(message: AbstractMessage, headers: Mapping[str, Any], user_id: str | None = None) -> aio_pika.Message:
    """The message with other headers, persistent and without expiry; its `user_id` is dropped
    (the broker refuses one that is not the publishing connection's user): `user_id` is that
    connection's user, when the copy should say who publishes it."""
    return aio_pika.Message(
        message.body,
        headers=dict(headers),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
        user_id=user_id,
    )


async def publish_confirmed(channel: AbstractChannel, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
    """Publishes on a channel with publisher confirms; raises unless the broker confirmed it
    and routed it to a queue (mandatory)."""
    target = channel.default_exchange if exchange == "" else await channel.get_exchange(exchange, ensure=False)
    confirmation = await target.publish(message, routing_key=routing_key, mandatory=True, timeout=30)
    if not isinstance(confirmation, Basic.Ack):
        raise RuntimeError(f"the broker did not take the message for {exchange or '(default)'}/{routing_key}")


async def park(channel: AbstractChannel, message: AbstractMessage, service: str, why: Why, trusted: bool) -> None:
    """Publishes the parked copy with its why-headers to the service's parking queue (confirmed);
    the caller acks the original only after this returns."""
    copy = copy_of(message, park_headers(message, service, why, datetime.now(UTC), trusted))
    await publish_confirmed(channel, routing.DEAD_LETTER_EXCHANGE, service, copy)


@dataclass(frozen=True)
class ParkedMessage:
    """What `userprov parked` shows of a parked message."""
    id: str  # its message_id, or a digest of its body when it has none
    service: str
    exchange: str  # where a replay publishes it
    routing_key: str
    reason: str
    error_type: str
    error_message: str
    first_failure: str
    last_failure: str
    attempts: int | None
    correlation_id: str
    replays: int
    had_message_id: bool = True
    # what a replay says of its original's publisher: userprov's judgement when it parked (or
    # handed off) the original; else, the broker having dead-lettered it unjudged, its RabbitMQ user
    original_trusted: bool | None = None
    original_publisher: str | None = None

    @classmethod
    def of(cls, message: AbstractMessage, service: str) -> ParkedMessage:
        """`service`: the one whose parking queue held the message. A message the broker
        dead-lettered (x-death) carries its publisher's headers, not userprov's: then only the
        broker says where it came from and why."""
        headers = dict(message.headers or {})
        death, original = _first_death(headers), _original(message, service)
        if death:
            headers = {k: v for k, v in headers.items() if _kept_from_publisher(k)}
        death_time = death.get("time")
        broker_time = iso(death_time) if isinstance(death_time, datetime) else ""
        routing_keys = death.get("routing-keys") or []
        had_message_id = bool(_text(message.message_id)) and headers.get(NO_MESSAGE_ID) is not True
        exchange = _text(headers.get(EXCHANGE)) if EXCHANGE in headers else _text(death.get("exchange"))
        routing_key = _text(headers.get(ROUTING_KEY)) or (_text(routing_keys[0]) if routing_keys else "")
        return cls(
            id=_text(message.message_id) if had_message_id else "sha256:" + hashlib.sha256(message.body).hexdigest()[:16],
            service=service,
            exchange=routing.replay_exchange(service, exchange, routing_key),
            routing_key=routing_key,
            reason=_text(headers.get(REASON)) or _text(death.get("reason")) or "unknown",
            error_type=_text(headers.get(ERROR_TYPE)),
            error_message=_text(headers.get(ERROR_MESSAGE)),
            first_failure=_text(headers.get(FIRST_FAILURE)) or broker_time,
            last_failure=_text(headers.get(LAST_FAILURE)) or broker_time,
            attempts=_int(headers.get(ATTEMPTS)) if ATTEMPTS in headers else _int(death.get("count")),
            correlation_id=_text(message.correlation_id),
            replays=_int(headers.get(REPLAYS)) or 0,
            had_message_id=had_message_id,
            original_trusted=original if isinstance(original, bool) else None,
            original_publisher=original if isinstance(original, str) else None,
        )

    def replay_refusal(self) -> str | None:
        """Why this message cannot be replayed where it says it came from; None if it can: only
        to a routing key its service's queue is bound to (never, say, to userprov.internal from
        user-creation's parking queue, whatever a publisher wrote in its headers)."""
        if not self.routing_key:
            return "where it came from is unknown"
        if not self.had_message_id:
            return "it had no message_id, so a replay could not be recognised as a duplicate: purge it"
        if (self.exchange, self.routing_key) not in subscriptions(self.service):
            return f"{self.routing_key!r} on {self.exchange or '(default)'!r} is not a message {self.service} takes"
        return None


def replay_copy(message: AbstractMessage, parked: ParkedMessage, user_id: str | None = None) -> aio_pika.Message:
    """The message as it was first published (same message_id, so the inbox recognises it), with
    only the first failure, a replay count and what it says of its original's publisher added;
    published by `user_id` (the operator's RabbitMQ user). It is then trusted as a platform service
    only if both the operator and the original's publisher are (userprov.runtime.publisher)."""
    headers = publisher_headers(message)
    headers[REPLAYS] = parked.replays + 1
    if parked.original_publisher is not None:
        headers[ORIGINAL_PUBLISHER] = parked.original_publisher
    else:
        headers[ORIGINAL_TRUSTED] = parked.original_trusted is True
    return copy_of(message, headers, user_id)


def with_original_user(message: AbstractMessage, headers: dict[str, Any]) -> None:
    """A copy's headers name its original's RabbitMQ user (a copy of a copy keeps the first's)."""
    if ORIGINAL_USER not in headers and isinstance(message.user_id, str) and message.user_id:
        headers[ORIGINAL_USER] = message.user_id


def publisher_headers(message: AbstractMessage) -> dict[str, Any]:
    """The headers a copy of the message republished by userprov carries: its publisher's, but
    for what the broker set, what only userprov may say (userprov's prefix), and what cannot be
    sent again (a key or text that was not UTF-8 arrives as lone surrogates, which AMQP cannot
    encode: the copy would fail as a whole)."""
    return {k: v for k, v in (message.headers or {}).items()
            if k not in _BROKER_HEADERS and _kept_from_publisher(k) and _encodable(k, v)}


def _encodable(key: str, value: Any) -> bool:
    try:
        encode.field_table({key: value})
    except Exception:  # noqa: BLE001 - pamqp raises TypeError, ValueError or UnicodeEncodeError
        return False
    return True


def _kept_from_publisher(key: str) -> bool:
    return not key.startswith(PREFIX) or key in _KEPT_ON_REPLAY


def _time(value: object) -> str | None:
    try:
        return iso(datetime.fromisoformat(value)) if isinstance(value, str) and len(value) <= 64 else None
    except ValueError:
        return None


def _original(message: AbstractMessage, service: str) -> bool | str:
    """What a replay says of the original's publisher (see ParkedMessage). A copy the broker
    dead-lettered carries its publisher's headers, but its latest x-death entry (first in the list)
    is the broker's own, and so is its user_id property (checked when it was published); only the
    workers write to a bulk queue, and its copies say whether their publisher was trusted."""
    headers = message.headers or {}
    deaths = headers.get("x-death")
    if not (isinstance(deaths, list) and deaths):
        return headers.get(ORIGINAL_TRUSTED) is True  # userprov's own header: a publisher's is dropped when parking
    latest = deaths[0] if isinstance(deaths[0], Mapping) else {}
    if latest.get("queue") == routing.bulk_queue_name(service):
        return headers.get(TRUSTED_PUBLISHER) is True
    return message.user_id if isinstance(message.user_id, str) else ""


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        return deaths[-1]  # the oldest death is last
    return {}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return printable(value, 1000) if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
