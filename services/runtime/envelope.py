"""What the runtime keeps of an incoming AMQP message, independent of aio-pika."""
from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage


@dataclass(frozen=True)
class Envelope:
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    delivery_count: int

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Envelope:
        count = (message.headers or {}).get("x-delivery-count", 0)
        return cls(
            routing_key=message.routing_key or "",
            body=message.body,
            message_id=message.message_id or None,
            correlation_id=message.correlation_id or None,
            reply_to=message.reply_to or None,
            delivery_count=count if isinstance(count, int) else 0,
        )

    @property
    def causation_id(self) -> str | None:
        """The correlation id copied onto every event this message causes: the caller's, else its own id."""
        return self.correlation_id or self.message_id
