"""OpenTelemetry traces, with the optional extra (`pip install 'userprov[otel]'`) and
USERPROV_TRACING=true: a CONSUMER span per message processed, child of the trace context the
message carried, and a PRODUCER span per message published (events relayed from the outbox,
answers), child of the context stored with it, whose context the published message carries.
Exported over OTLP/HTTP (configured by the standard OTEL_EXPORTER_OTLP_* variables); the
attributes follow the messaging semantic conventions for RabbitMQ of one version, SEMCONV_VERSION.

Without the extra or the setting, only the trace context passes through (trace_context)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.text import printable
from userprov.runtime import trace_context

if TYPE_CHECKING:
    from userprov.runtime.outbox import OutgoingMessage

SEMCONV_VERSION = "1.27.0"
SEMCONV_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
SUCCEEDED = ("done", "answered", "duplicate", "noted")

_tracer: Any = None
_provider: Any = None


class SpanOutcome:
    """What the dispatcher tells the span once the message is settled."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def settled(self, settle: str, outcome: str) -> None:
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("userprov.settle", settle)
        self._span.set_attribute("userprov.outcome", outcome)
        if outcome.split(":")[0] not in SUCCEEDED:
            self._span.set_attribute("error.type", outcome.split(":")[-1])
            self._span.set_status(Status(StatusCode.ERROR, outcome))


def setup(enabled: bool, service_name: str) -> None:
    global _tracer, _provider
    if not enabled:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise RuntimeError("USERPROV_TRACING=true needs the otel extra: pip install 'userprov[otel]'") from error
    from userprov import __version__

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name,
                                "service.version": __version__})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("userprov", __version__, schema_url=SEMCONV_SCHEMA_URL)


def shutdown() -> None:
    """Exports the spans still buffered."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


@contextmanager
def processing(message: AbstractIncomingMessage, service: str, queue: str) -> Iterator[SpanOutcome]:
    """Around the handling of one message: sets the trace context its events will carry."""
    carrier = trace_context.incoming(message.headers)
    if _tracer is None:
        token = trace_context.current.set(carrier)
        try:
            yield SpanOutcome()
        finally:
            trace_context.current.reset(token)
        return
    exchange = _text(getattr(message, "exchange", ""))
    attributes = {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": _text(message.routing_key),
        "messaging.consumer.group.name": queue,
        "messaging.message.id": _text(message.message_id),
        "messaging.message.conversation_id": _text(message.correlation_id),
        "messaging.message.body.size": len(message.body),
        "messaging.rabbitmq.message.delivery_tag": message.delivery_tag or 0,
        "userprov.service": service,
    }
    with _span(f"process {exchange or queue}", "CONSUMER", carrier, attributes) as (span, own):
        token = trace_context.current.set(own)
        try:
            yield SpanOutcome(span)
        finally:
            trace_context.current.reset(token)


@contextmanager
def working(service: str, name: str, origin: trace_context.Carrier | None) -> Iterator[trace_context.Carrier | None]:
    """Around work a scheduler took from PostgreSQL (no message stands for it): an INTERNAL span,
    child of the context stored with the work; yields the context its events carry."""
    if _tracer is None:
        yield origin
        return
    with _span(name, "INTERNAL", origin, {"userprov.service": service}, messaging=False) as (_, own):
        yield own


@contextmanager
def sending(message: OutgoingMessage) -> Iterator[trace_context.Carrier | None]:
    """Around one publish: the trace headers the message goes out with."""
    if _tracer is None:
        yield message.trace
        return
    attributes = {
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": message.exchange,
        "messaging.rabbitmq.destination.routing_key": message.routing_key,
        "messaging.message.id": message.message_id,
        "messaging.message.conversation_id": message.correlation_id or "",
        "messaging.message.body.size": len(message.body),
    }
    with _span(f"send {message.exchange or 'reply'}", "PRODUCER", message.trace, attributes) as (_, own):
        yield own


@contextmanager
def _span(
    name: str, kind: str, parent: trace_context.Carrier | None, attributes: dict[str, Any], messaging: bool = True
) -> Iterator[tuple[Any, trace_context.Carrier | None]]:
    """A current span, child of `parent`, and the trace context that names it."""
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    with _tracer.start_as_current_span(
        name, context=propagator.extract(parent or {}), kind=SpanKind[kind],
        attributes={**({"messaging.system": "rabbitmq"} if messaging else {}), **{k: v for k, v in attributes.items() if v != ""}},
    ) as span:
        own: dict[str, str] = {}
        propagator.inject(own)
        yield span, trace_context.incoming(own)


def _text(value: object) -> str:
    return printable(value, 255) if isinstance(value, str) else ""
