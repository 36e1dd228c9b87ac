"""RabbitMQ users with the permissions the documentation recommends (docs/reference/wire.md), for the tests that prove them."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

from tests.support.infra import Infra, rabbitmqctl, rabbitmqctl_in_background

# the documentation's table, for an integrator whose own queues are server-named (amq.gen-...)
CONFIGURE = r"^amq\.gen-.*$"
WRITE = r"^(userprov\.(commands|events)|amq\.gen-.*)$"
READ = r"^(userprov\.events|amq\.gen-.*)$"
# the documentation's row for a link handler: it publishes accepts and declines (and queries), and reads
# the outcome events
LINK_HANDLER_WRITE = r"^(userprov\.(responses|commands)|amq\.gen-.*)$"


@contextmanager
def broker_user(infra: Infra, name: str, write: str, user: str | None = None) -> Iterator[str]:
    """A new RabbitMQ user with these permissions on the vhost: its AMQP URL; deleted after."""
    user, password = user or f"{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl("set_permissions", "-p", infra.vhost, user, CONFIGURE, write, READ)
        parts = urlsplit(infra.amqp_url)
        yield urlunsplit(parts._replace(netloc=f"{quote(user)}:{password}@{parts.hostname}:{parts.port}"))
    finally:
        rabbitmqctl_in_background("delete_user", user)  # the session's `infra` waits for it at its end
