"""Settings from the environment (`USERPROV_*`), with working local defaults."""
from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from userprov.broker_nodes import broker_urls, node_of, vhost_of
from userprov.db.urls import database_name, host_of
from userprov.front_doors.limits import DoorLimits
from userprov.front_doors.token_buckets import Rate
from userprov.runtime.lanes import Lane
from userprov.sandbox.pool import SandboxLimits


class Settings(BaseSettings):
    # an empty variable means unset (compose and Kubernetes often set `VAR=`): the default applies
    model_config = SettingsConfigDict(env_prefix="USERPROV_", frozen=True, env_ignore_empty=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "postgresql://postgres:postgres@127.0.0.1:5432/userprov"
    database_pool_size: int = Field(default=10, ge=1)
    database_statement_cache_size: int = Field(
        default=100, ge=0,
        description="Prepared statements each pooled connection keeps (asyncpg's cache). 0 behind a pooler in transaction"
                    " mode (PgBouncer before 1.21, or without max_prepared_statements), where a named statement"
                    " prepared on one server connection is missing on the next.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply pending migrations at start; when off, wait until `userprov migrate` has."
    )

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the first byte (SMTPS, usually port 465), instead of STARTTLS.")
    smtp_ca_file: str | None = Field(default=None, description="CA certificates (PEM) the SMTP server's certificate must chain to;"
                                     " the system's when unset.")
    smtp_timeout_seconds: float = 10.0
    smtp_local_hostname: str | None = Field(default=None, description="The name given in EHLO; the machine's FQDN by default.")
    smtp_sender: str = "GoTo Admin <no-reply@userprov.example.com>"
    smtp_retry_seconds: float = Field(
        default=5 * 24 * 3600, ge=0,
        description="How long an email is retried after temporary SMTP failures (4xx, timeouts), from its first try, before"
        " the invitation fails: a mail relay's queue lifetime (Postfix keeps a message 5 days).",
    )
    smtp_backoff_seconds: float = Field(default=0.5, ge=0)
    smtp_backoff_max_seconds: float = Field(default=900.0, ge=0)
    smtp_attempts: int = Field(
        default=5, ge=1, description="Sends of one invitation cut off by its worker stopping (a claim that lapsed) before it fails."
    )
    smtp_connections: int = Field(default=8, ge=1, description="SMTP connections kept open and used at once, per process.")
    smtp_idle_seconds: float = Field(default=30.0, ge=0, description="An SMTP connection idle this long is closed, not reused.")

    template_renderers: int = Field(default=2, ge=1, description="Sandbox processes rendering account templates, per service.")
    template_timeout_seconds: float = Field(default=1.0, gt=0, description="Longest render of one account template.")
    template_memory_mb: int = Field(default=256, ge=64, description="Address-space limit of a sandbox process.")
    template_quarantine_seconds: float = Field(
        default=600, ge=0, description="How long a template that hit the time or memory bound falls back at once."
    )

    trusted_publishers: str | None = Field(
        default=None,
        description="RabbitMQ users (comma-separated) whose commands may omit requested_by, as trusted platform services;"
        " they must set the AMQP user_id property. Unset: every publisher is trusted (logged at start).",
    )

    link_base_url: str = "http://127.0.0.1:8080/invitation"
    links_host: str = Field(default="127.0.0.1", description="`userprov links` listens here (0.0.0.0 in a container).")
    links_port: int = Field(default=8080, ge=1, le=65535, description="`userprov links` listens on this port.")
    links_sign_in_url: str | None = Field(
        default=None, description="The platform's sign-in page, where a person creates their password after accepting;"
        " the page adds `login_hint=<email>`.",
    )
    links_form_secret: SecretStr | None = Field(
        default=None, description="Signs the page's forms (anti-forgery); the same on every replica of `userprov links`."
        " Unset: a random one per process.",
    )
    links_wait_seconds: float = Field(default=10.0, gt=0, le=60, description="How long the page waits for userprov's answer.")
    links_request_seconds: float = Field(
        default=10.0, gt=0, description="A request to the page must have fully arrived this long after its connection opened"
        " (or its previous answer), else 408: a client sending slowly holds no connection for long.",
    )
    scim_host: str = Field(default="127.0.0.1", description="`userprov scim serve` listens here (0.0.0.0 in a container).")
    scim_port: int = Field(default=8090, ge=1, le=65535, description="`userprov scim serve` listens on this port.")
    scim_wait_seconds: float = Field(
        default=10.0, gt=0, le=60, description="How long a SCIM request waits for userprov's answer before it is a 503 with"
        " Retry-After.",
    )
    scim_request_seconds: float = Field(
        default=10.0, gt=0, description="A SCIM request must have fully arrived this long after its connection opened"
        " (or its previous answer), else 408.",
    )
    scim_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024,
                                 description="A larger SCIM request body is refused with 413.")
    scim_token_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="How long a bearer token's account is remembered: a revoked token stops"
        " working within this long.",
    )
    front_door_requests_per_second: float = Field(
        default=200.0, gt=0, description="Requests one client address may make per second to a front door process (the"
        " invitation page, SCIM) after a burst of USERPROV_FRONT_DOOR_REQUEST_BURST; past it, 429 with Retry-After."
        " /livez, /readyz and /metrics are not limited.",
    )
    front_door_request_burst: int = Field(default=400, ge=1, description="Requests one client address may make at once.")
    front_door_failures_per_minute: float = Field(
        default=30.0, gt=0, description="Failed authentications (a SCIM 401, an unknown link's 404) one client address may"
        " have per minute after a burst of USERPROV_FRONT_DOOR_FAILURE_BURST; past it, every request of the address is 429"
        " with Retry-After until it has waited.",
    )
    front_door_failure_burst: int = Field(default=20, ge=1, description="Failed authentications one client address may have at once.")
    front_door_lookups: int = Field(
        default=8, ge=1, description="Token lookups (scim_tokens.resolve, invitations.peek) a front door process has in"
        " flight at most: the most messages a flood of made-up tokens adds to account lookup's queue, per process.",
    )
    front_door_lookup_wait_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How long a lookup waits for its turn past USERPROV_FRONT_DOOR_LOOKUPS before"
        " its request is a 503 with Retry-After.",
    )
    trusted_proxies: str | None = Field(
        default=None, description="The proxies in front of the invitation page and SCIM (addresses and networks,"
        " comma-separated: `10.0.0.0/8,192.0.2.7`) whose X-Forwarded-For and X-Forwarded-Proto are believed: the client"
        " is the last address in X-Forwarded-For that is not one of them. Unset: none, the TCP peer is the client.",
    )
    welcome_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    transfer_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    resend_cooldown_seconds: int = Field(default=60, ge=0)

    prefetch_user_creation: int = Field(default=4, ge=1)
    prefetch_account_lookup: int = Field(default=16, ge=1)
    prefetch_invitation_mailing: int = Field(default=16, ge=1)
    prefetch_invitation_response: int = Field(default=16, ge=1)

    delivery_limit: int = Field(default=20, ge=1, description="Deliveries before a message is parked.")
    transient_retry_seconds: float = Field(
        default=300, ge=0, description="How long a message keeps retrying a transient fault in process before it is given back."
    )
    transient_backoff_max_seconds: float = Field(default=5.0, ge=0)
    reconnect_backoff_max_seconds: float = Field(default=5.0, ge=0)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_handover_seconds: float = Field(
        default=5.0, ge=0, description="Events a process committed and has not published within this long are relayed by any process."
    )
    lookup_chunk_size: int = Field(default=200, ge=1, description="Memberships named per memberships.created message.")
    lookup_batch_size: int = Field(default=200, ge=1, description="Memberships decided per account-lookup transaction.")
    scheduler_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often account lookup and mailing look for waiting work that no message announced."
    )
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    lane: Lane = Field(
        default=Lane.ALL,
        description="`all`, or `interactive` and `bulk` in processes beside each other: the interactive lane takes"
        " every message and small work, the bulk lane takes the batches at a lower CPU priority (\"Lanes\" in the README).",
    )
    bulk_niceness: int = Field(
        default=10, ge=0, le=19, description="How much a bulk-lane process lowers its CPU priority (nice) at start."
    )
    lane_priority_dir: Path = Field(
        default=Path("/dev/shm"),
        description="Where the lanes of one host share the word that interactive work is in hand (a small memory-mapped"
        " file per deployment): the bulk lane holds for it (\"Lanes\" in the README).",
    )

    metrics_port: int | None = Field(default=None, description="Serve Prometheus metrics on this port.")
    health_port: int | None = Field(default=None, description="Serve /livez and /readyz on this port.")
    queue_watch_seconds: float = Field(default=15.0, gt=0, description="How often queue depths and the age of waiting work are read for the metrics.")
    ready_check_seconds: float = Field(
        default=2.0, gt=0, description="How often readiness is checked in the background (/readyz answers from the last check)."
    )
    circuit_probe_seconds: float = Field(
        default=2.0, gt=0, description="While a dependency is down (no new work taken), how often it is tried again."
    )
    ready_outbox_lag_seconds: float = Field(
        default=60.0, gt=0, description="Not ready while the oldest event waiting in the outbox is older than this."
    )
    inbox_retention_days: int = Field(default=14, ge=1, description="How long processed message ids are kept.")
    housekeeping_interval_seconds: float = Field(default=3600, gt=0)

    tracing: bool = Field(
        default=False, description="Export OpenTelemetry spans over OTLP (OTEL_EXPORTER_OTLP_*); needs the otel extra."
    )

    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="JSON logs; by default when stderr is not a TTY.")

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(
            renderers=self.template_renderers,
            timeout_seconds=self.template_timeout_seconds,
            memory_mb=self.template_memory_mb,
            quarantine_seconds=self.template_quarantine_seconds,
            slow_seconds=self.template_timeout_seconds / 2,
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str | None) -> str | None:
        for entry in (value or "").split(","):
            if entry.strip():
                try:
                    ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"USERPROV_TRUSTED_PROXIES: {entry.strip()[:60]!r} is no address or network") from None
        return value

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> Settings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("USERPROV_SMTP_TLS (implicit TLS, port 465) and USERPROV_SMTP_STARTTLS (port 587) exclude each other")
        return self

    def proxies(self) -> list[str]:
        """The trusted proxies, as networks (uvicorn takes `10.0.0.1/8` for a name, never to match)."""
        return [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in (self.trusted_proxies or "").split(",") if entry.strip()]

    def door_limits(self) -> DoorLimits:
        return DoorLimits(
            requests=Rate(self.front_door_requests_per_second, self.front_door_request_burst),
            failures=Rate(self.front_door_failures_per_minute / 60, self.front_door_failure_burst),
            lookups=self.front_door_lookups,
            lookup_wait_seconds=self.front_door_lookup_wait_seconds,
        )

    def trusted(self) -> frozenset[str] | None:
        """The RabbitMQ users trusted as platform services; None: every publisher."""
        if self.trusted_publishers is None:
            return None
        return frozenset(u.strip() for u in self.trusted_publishers.split(",") if u.strip())

    def endpoints(self) -> dict[str, str]:
        """Where this process connects, for its first log line: hosts, vhost and database, never
        a user name or password."""
        brokers = broker_urls(self.amqp_url)
        return {
            "broker": f"{', '.join(node_of(url) for url in brokers)} vhost {vhost_of(brokers[0])}",
            "database": f"{host_of(self.database_url)}/{database_name(self.database_url)}",
            "smtp": f"{self.smtp_host}:{self.smtp_port}" + (" (STARTTLS)" if self.smtp_starttls else ""),
        }

    def prefetch(self, service: str) -> int:
        return int(getattr(self, "prefetch_" + service.replace("-", "_")))
