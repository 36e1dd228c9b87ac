"""Who published the message being handled, as far as the runtime can vouch for it.

A message's publisher is trusted as a platform service when its AMQP `user_id` (which RabbitMQ
refuses unless it is the publishing connection's own user) is in USERPROV_TRUSTED_PUBLISHERS, or
when that setting is unset. A command handed to the bulk lane is judged by the header the
interactive lane wrote (userprov.runtime.handoff), believed only on the bulk queue.

A replay (`userprov parked replay`) is published by the operator, not by its original's publisher,
so it says how trusted its original was: `x-userprov-original-trusted`, the trust userprov judged
when it parked (or handed off) the original, or `x-userprov-original-publisher`, the RabbitMQ user
that published an original the broker dead-lettered without userprov judging it. Anyone can set
those headers, so they can only lower trust: a replay is trusted when its replayer is and its
original was. An untrusted integrator who sets them gains nothing; an untrusted command replayed by
a trusted operator stays untrusted; a trusted one replayed by a trusted operator runs as before."""
from __future__ import annotations

from contextvars import ContextVar

from userprov.runtime.envelope import Envelope

# Whether the message being handled comes from a trusted platform service. Set by the dispatcher
# for each message.
trusted_publisher: ContextVar[bool] = ContextVar("trusted_publisher", default=False)


def is_trusted(user_id: str | None, trusted: frozenset[str] | None) -> bool:
    return trusted is None or (user_id is not None and user_id in trusted)


def judged(envelope: Envelope, trusted: frozenset[str] | None, *, handed_off: bool) -> bool:
    """Whether the message acts with a trusted platform service's rights; `handed_off`: it came
    from a bulk queue, which only the workers feed."""
    if handed_off:
        return trusted is None or envelope.handed_off_trusted
    own = is_trusted(envelope.user_id, trusted)
    if envelope.original_trusted is not None:
        own = own and envelope.original_trusted
    if envelope.original_publisher is not None:
        own = own and is_trusted(envelope.original_publisher or None, trusted)
    return own
