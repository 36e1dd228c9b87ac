"""Who published the message being handled, as far as the runtime can vouch for it."""
from __future__ import annotations

from contextvars import ContextVar

# Whether the message being handled comes from a trusted platform service: a publisher in
# USERPROV_TRUSTED_PUBLISHERS (by the AMQP user_id, which RabbitMQ checks against the connection's
# user), or any publisher while that setting is unset. Set by the dispatcher for each message.
trusted_publisher: ContextVar[bool] = ContextVar("trusted_publisher", default=False)


def is_trusted(user_id: str | None, trusted: frozenset[str] | None) -> bool:
    return trusted is None or (user_id is not None and user_id in trusted)
