"""Prometheus metrics of a worker process, served on USERPROV_METRICS_PORT when it is set."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

MESSAGES = Counter(
    "userprov_messages", "Messages handled, by service, routing key and outcome.", ["service", "routing_key", "outcome"]
)
HANDLING_SECONDS = Histogram(
    "userprov_message_handling_seconds",
    "Time from delivery to settle, by service and routing key.",
    ["service", "routing_key"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_RELAYED = Counter("userprov_outbox_relayed", "Outbox messages published with a broker confirm.")
OUTBOX_LAG = Gauge(
    "userprov_outbox_lag_seconds",
    "Age of the oldest outbox row this process's relay found waiting, at its last batch (0 when none was waiting).",
)
EMAILS = Counter("userprov_emails", "Invitation emails by result (delivered or failed).", ["result"])
TEMPLATE_FALLBACKS = Counter(
    "userprov_template_fallbacks",
    "Invitation emails sent with the built-in template because the account's failed, by reason.",
    ["reason"],
)
QUEUE_MESSAGES = Gauge("userprov_queue_messages", "Messages in each userprov queue (service and parking queues).", ["queue"])
QUEUE_CONSUMERS = Gauge("userprov_queue_consumers", "Consumers on each service queue, all processes together.", ["queue"])
PARKED = Gauge("userprov_parked_messages", "Messages parked for each service (its parking queue's depth).", ["service"])
READY = Gauge("userprov_ready", "1 while this process is ready (what /readyz would answer), else 0; checked every USERPROV_READY_CHECK_SECONDS,"
              " whether or not anything probes /readyz.")
CIRCUIT_OPEN = Gauge(
    "userprov_circuit_open", "1 while a dependency is down and this process takes no new work that needs it.", ["dependency"]
)
RESPONSES = Counter(
    "userprov_responses",
    "Invitation responses handled, by response (accept or decline), outcome (taken or refused) and refusal reason.",
    ["response", "outcome", "reason"],
)
EXPRESS_FULL = Counter(
    "userprov_express_full",
    "Small signals this process's express lane could not take, by service: it held 100 items already, so their work goes"
    " to the batches, here or in another process (logged `express_lane_full` once each time the lane fills).",
    ["service"],
)
BUILD_INFO = Gauge("userprov_build_info", "1, labelled with the version of userprov this process runs.", ["version"])
OLDEST_WAITING = Gauge(
    "userprov_oldest_waiting_seconds",
    "How long the longest-waiting work due next has waited in PostgreSQL, by the service that takes it (account-lookup:"
    " memberships for their decision; invitation-mailing: invitations for their email); 0 when none waits.",
    ["service"],
)
BROKER_CONNECTIONS = Counter("userprov_broker_connections", "Connections made to RabbitMQ (1 plus reconnections).")
BROKER_NODE = Gauge("userprov_broker_node", "1, labelled with the RabbitMQ node (host:port) this process is connected to now.", ["node"])


def serve_metrics(port: int | None) -> None:
    from userprov import __version__

    BUILD_INFO.labels(__version__).set(1)
    if port:
        start_http_server(port, addr="0.0.0.0")
