"""structlog set-up: JSON lines when not on a TTY, with per-message context variables."""
from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, WrappedLogger

from userprov.masking import mask_emails_in


def mask_emails(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """No address reaches a log line, not even inside an exception's message or traceback (a
    database error can quote the row it refused)."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = mask_emails_in(value)
    return event


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_emails,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # the AMQP client logs each failed connect and each lost connection itself, as text, on every
    # retry; the broker session says the same once, in JSON, with the reason (broker_connect_failed)
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
