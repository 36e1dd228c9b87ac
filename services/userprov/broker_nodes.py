"""USERPROV_AMQP_URL may name several RabbitMQ nodes of one cluster, comma-separated, each with
its own host and port (and the same vhost): a process connects to the first that answers, and
after losing a connection starts with the next one. (A comma in a password is written %2C.)"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection

CONNECT_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError)


def broker_urls(value: str) -> list[str]:
    urls = [url.strip() for url in value.split(",") if url.strip()]
    if not urls:
        raise ValueError("USERPROV_AMQP_URL names no broker")
    return urls


def node_of(url: str) -> str:
    """host:port of a broker URL, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5672}"


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if path not in ("", "/") else "/"


class NoNodeAnswered(ConnectionError):
    """None of the nodes took the connection: why, node by node."""

    def __init__(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        self.failures = list(failures)
        super().__init__("; ".join(f"{node_of(url)}: {type(error).__name__}: {error}" for url, error in self.failures))


async def connect_first(value: str, start: int = 0, **options: Any) -> tuple[AbstractConnection, int]:
    """A connection to the first node that answers, trying them in order from `start`; and the
    index of that node. With a single node its own error is raised, else NoNodeAnswered."""
    urls = broker_urls(value)
    failures: list[tuple[str, BaseException]] = []
    for step in range(len(urls)):
        index = (start + step) % len(urls)
        try:
            return await aio_pika.connect(urls[index], **options), index
        except CONNECT_ERRORS as error:
            if len(urls) == 1:
                raise
            failures.append((urls[index], error))
    raise NoNodeAnswered(failures)
