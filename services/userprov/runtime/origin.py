"""Where a piece of work came from, kept with it while it waits in PostgreSQL, so that the events
it causes later carry the correlation id and trace context of the message that asked for it."""
from __future__ import annotations

from dataclasses import dataclass

from userprov.runtime import trace_context


@dataclass(frozen=True)
class Origin:
    correlation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @classmethod
    def now(cls, correlation_id: str | None) -> Origin:
        """The message being processed now: its correlation id and the current trace context."""
        carrier = trace_context.current.get() or {}
        return cls(correlation_id, carrier.get(trace_context.TRACEPARENT), carrier.get(trace_context.TRACESTATE))

    def traced(self, carrier: trace_context.Carrier | None) -> Origin:
        """The same correlation, in the trace context given (a span that continues the work)."""
        carrier = carrier or {}
        return Origin(self.correlation_id, carrier.get(trace_context.TRACEPARENT), carrier.get(trace_context.TRACESTATE))

    @property
    def trace(self) -> trace_context.Carrier | None:
        if self.traceparent is None:
            return None
        carrier = {trace_context.TRACEPARENT: self.traceparent}
        if self.tracestate is not None:
            carrier[trace_context.TRACESTATE] = self.tracestate
        return carrier
