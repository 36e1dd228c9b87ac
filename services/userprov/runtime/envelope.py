"""What the runtime keeps of an incoming AMQP message, independent of aio-pika."""
from __future__ import annotations

import re
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from contracts import routing
from contracts.base import FieldError

TAKEN_IN_PROCESS = "x-userprov-taken-in-process"  # see userprov.runtime.worker.local_signals
TRUSTED_PUBLISHER = "x-userprov-trusted-publisher"  # see userprov.runtime.handoff
# what a replay says of its original's publisher (see userprov.runtime.publisher): whether userprov
# trusted it, or, when userprov never judged it, which RabbitMQ user it was
ORIGINAL_TRUSTED = "x-userprov-original-trusted"
ORIGINAL_PUBLISHER = "x-userprov-original-publisher"
# the audit trail's cause (see userprov.audit.actors): the front door a message came through and
# who acts there (a SCIM token's id), set by the doors; and the RabbitMQ user of a copy's original
# (set by userprov on a copy for the bulk lane or a parking queue). Believed only from a trusted publisher.
VIA = routing.VIA_HEADER
ACTOR = routing.ACTOR_HEADER
ORIGINAL_USER = "x-userprov-original-user"

# An id or queue name that userprov stores, copies onto events and routes by: printable,
# without NUL, controls or lone surrogates (bytes that were not UTF-8 arrive as surrogates).
_PROPERTY_CHARACTERS = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,255}")


@dataclass(frozen=True)
class Envelope:
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    delivery_count: int
    taken_in_process: bool = False  # a signal whose work its publisher took already (header set by userprov)
    user_id: str | None = None  # the publisher's RabbitMQ user, when it said so (the broker checks it is the connection's)
    # a command handed to the bulk lane: whether its first publisher was trusted (header set by
    # userprov; believed only from a bulk queue)
    handed_off_trusted: bool = False
    # a replay: whether its original's publisher was trusted, or who it was (headers that can only
    # lower the trust its own publisher has: userprov.runtime.publisher)
    original_trusted: bool | None = None
    original_publisher: str | None = None
    via: str | None = None  # the front door it came through, as its publisher says (x-userprov-via)
    actor_id: str | None = None  # who acts through that door, as its publisher says (x-userprov-actor)
    original_user: str | None = None  # a copy's original's RabbitMQ user, as the copy says (x-userprov-original-user)

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Envelope:
        headers = message.headers or {}
        # Any publisher can set x-delivery-count, and a quorum queue passes it through on a first
        # delivery (RabbitMQ 3.10, basic.consume): only a redelivery carries the broker's count.
        count = headers.get("x-delivery-count", 0) if message.redelivered else 0
        return cls(
            routing_key=_text(message.routing_key),
            body=message.body if isinstance(message.body, bytes) else b"",
            message_id=_text(message.message_id) or None,
            correlation_id=_text(message.correlation_id) or None,
            reply_to=_text(message.reply_to) or None,
            delivery_count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
            taken_in_process=headers.get(TAKEN_IN_PROCESS) is True,
            user_id=_text(message.user_id) or None,
            handed_off_trusted=headers.get(TRUSTED_PUBLISHER) is True,
            original_trusted=headers.get(ORIGINAL_TRUSTED) is True if ORIGINAL_TRUSTED in headers else None,
            original_publisher=_text(headers[ORIGINAL_PUBLISHER]) if ORIGINAL_PUBLISHER in headers else None,
            via=_property(headers.get(VIA)),
            actor_id=_property(headers.get(ACTOR)),
            original_user=_property(headers.get(ORIGINAL_USER)),
        )

    @property
    def causation_id(self) -> str | None:
        """The correlation id copied onto every event this message causes: the caller's, else its own id."""
        return self.correlation_id or self.message_id

    def property_errors(self) -> list[FieldError]:
        """The AMQP properties userprov would store or route by that cannot be used as given."""
        return [
            FieldError(
                field=name,
                code="invalid_characters",
                message=f"{name} must be 1 to 255 characters without NUL, control characters or undecodable bytes.",
            )
            for name, value in (("message_id", self.message_id), ("correlation_id", self.correlation_id), ("reply_to", self.reply_to))
            if value is not None and not _PROPERTY_CHARACTERS.fullmatch(value)
        ]

    def without_unusable_properties(self) -> Envelope:
        """The envelope with the properties that `property_errors` names dropped: what a
        refusal of this message may still record and copy onto its event."""
        bad = {e.field for e in self.property_errors()}
        return Envelope(
            self.routing_key,
            self.body,
            None if "message_id" in bad else self.message_id,
            None if "correlation_id" in bad else self.correlation_id,
            None if "reply_to" in bad else self.reply_to,
            self.delivery_count,
            user_id=self.user_id,
            via=self.via,
            actor_id=self.actor_id,
            original_user=self.original_user,
        )


def _property(value: object) -> str | None:
    """A header userprov would store: usable text, else None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and _PROPERTY_CHARACTERS.fullmatch(value) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
