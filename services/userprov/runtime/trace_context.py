"""W3C trace context (traceparent, tracestate) carried from every message to every event and
answer it causes, through the outbox. Without OpenTelemetry the caller's context is passed on
as it came (the events are children of the caller's span); with it (`userprov.runtime.tracing`)
they are children of the span that processed the message.

Headers come from anyone who may publish: only a well-formed traceparent is taken, and a
tracestate only beside one, bounded and in the characters the W3C format allows."""
from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_TRACESTATE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]+=[\x20-\x2b\x2d-\x3c\x3e-\x7e]+(?:,[ \t]*[\x20-\x2b\x2d-\x3c\x3e-\x7e]+=[\x20-\x2b\x2d-\x3c\x3e-\x7e]+)*")
TRACESTATE_MAX = 512

Carrier = dict[str, str]

# The context the events and answers written now belong to: set per message by the dispatcher.
current: ContextVar[Carrier | None] = ContextVar("userprov_trace_context", default=None)


def incoming(headers: Mapping[str, object] | None) -> Carrier | None:
    """The trace context in a message's headers, or None when it has none usable."""
    if not headers:
        return None
    parent = _text(headers.get(TRACEPARENT))
    if parent is None or not _TRACEPARENT.fullmatch(parent):
        return None
    carrier = {TRACEPARENT: parent}
    state = _text(headers.get(TRACESTATE))
    if state and len(state) <= TRACESTATE_MAX and _TRACESTATE.fullmatch(state):
        carrier[TRACESTATE] = state
    return carrier


def trace_id(carrier: Mapping[str, str] | None) -> str | None:
    return carrier[TRACEPARENT].split("-")[1] if carrier and TRACEPARENT in carrier else None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value.strip() if isinstance(value, str) and len(value) <= TRACESTATE_MAX + 64 else None
