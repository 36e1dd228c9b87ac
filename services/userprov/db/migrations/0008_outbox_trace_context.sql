-- The W3C trace context of the message whose handling wrote the row, published as its headers.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
