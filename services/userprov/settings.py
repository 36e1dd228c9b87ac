"""Settings from the environment (`USERPROV_*`), with working local defaults."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from userprov.broker_nodes import broker_urls, node_of, vhost_of
from userprov.db.urls import database_name, host_of
from userprov.front_doors.limits import DoorLimits
from userprov.front_doors.listening import local_url
from userprov.front_doors.token_buckets import Rate
from userprov.runtime.lanes import Lane
from userprov.sandbox.pool import SandboxLimits


class Settings(BaseSettings):
    # an empty variable means unset (compose and Kubernetes often set `VAR=`): the default applies
    model_config = SettingsConfigDict(env_prefix="USERPROV_", frozen=True, env_ignore_empty=True)

    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        description="RabbitMQ (the vhost is the URL's path). Several nodes of one cluster, comma-separated, each with its own"
        " host and port (`amqp://u:p@rabbit-0:5672/v,amqp://u:p@rabbit-1:5672/v`): a process connects to the first that"
        " answers and, after losing its connection, tries the next one first; it then declares its topology and consumes"
        " again, and the outbox publishes again what was not confirmed. `/readyz` (`broker_node`), the"
        " `userprov_broker_node` metric and the `broker_connected` log line name the node. Write a comma in a password as"
        " `%2C`.",
    )
    database_url: str = Field(
        default="postgresql://postgres:postgres@127.0.0.1:5432/userprov",
        description="PostgreSQL. Several hosts for a failover, with `target_session_attrs=read-write`"
        " (`postgresql://u:p@db-0:5432,db-1:5432/userprov?target_session_attrs=read-write`): connections go to whichever"
        " takes writes. A worker never creates the database: pointed at one that does not exist (a typo), it logs"
        " `database_missing` and exits with status 2 (or, with USERPROV_MIGRATE_ON_START=false, waits, not ready); only"
        " `userprov migrate --create-database` (and the demo) create one.",
    )
    database_pool_size: int = Field(
        default=10, ge=1, description="Connections per process (a process holds one only while a transaction runs), plus one"
        " for its database probe.",
    )
    database_statement_cache_size: int = Field(
        default=100, ge=0,
        description="Prepared statements each pooled connection keeps (asyncpg's cache). 0 behind a pooler in transaction"
                    " mode (PgBouncer before 1.21, or without max_prepared_statements), where a named statement"
                    " prepared on one server connection is missing on the next.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply pending migrations at start; when false (on Kubernetes the migration Job applies them),"
        " wait, not ready, until `userprov migrate` has."
    )

    smtp_host: str = Field(default="127.0.0.1", description="The SMTP server (your relay, or `userprov mail-catcher`).")
    smtp_port: int = Field(default=8025, description="The SMTP server's port (8025: `userprov mail-catcher`'s default).")
    smtp_username: str | None = Field(default=None, description="SMTP authentication: the user name (unset: none).")
    smtp_password: str | None = Field(default=None, description="SMTP authentication: the password.")
    smtp_starttls: bool = Field(default=False, description="STARTTLS after connecting (usually port 587); excludes USERPROV_SMTP_TLS.")
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the first byte (SMTPS, usually port 465); excludes"
                           " USERPROV_SMTP_STARTTLS.")
    smtp_ca_file: str | None = Field(default=None, description="PEM file of the CA certificates the SMTP server's certificate must"
                                     " chain to (STARTTLS or implicit TLS); the system's CAs when unset.")
    smtp_timeout_seconds: float = Field(
        default=10.0, description="Per SMTP try, as a whole (connect to QUIT). With USERPROV_TEMPLATE_TIMEOUT_SECONDS and"
        " USERPROV_CLAIM_SLACK_SECONDS it is the claim on an invitation, so a crashed process's emails go again after about"
        " 16 s.",
    )
    claim_slack_seconds: float = Field(
        default=5.0, gt=1.0, description="What a claim on an invitation holds beyond one render and one SMTP try (the claim:"
        " USERPROV_TEMPLATE_TIMEOUT_SECONDS + USERPROV_SMTP_TIMEOUT_SECONDS + this): the wait for a connection and the"
        " commits, 1 s of it kept between a try's latest end and the claim's. A living process renews its claims every"
        " quarter claim; a crashed one's lapse one claim after its last renewal.",
    )
    smtp_local_hostname: str | None = Field(default=None, description="The name given in EHLO; the machine's FQDN (looked up"
                                            " once) by default.")
    smtp_sender: str = Field(default="GoTo Admin <no-reply@userprov.example.com>", description="The emails' From header.")
    smtp_retry_seconds: float = Field(
        default=5 * 24 * 3600, ge=0,
        description="How long an email is retried after temporary SMTP failures (4xx, timeouts), from its first try, before"
        " `invitation.failed`: a mail relay's queue lifetime (Postfix keeps a message 5 days). An outage (the `smtp` circuit"
        " open) does not count as tries.",
    )
    smtp_backoff_seconds: float = Field(
        default=0.5, ge=0, description="The first wait between tries after a temporary SMTP failure, doubled at each try (the"
        " invitation waits in the queue meanwhile).",
    )
    smtp_backoff_max_seconds: float = Field(default=900.0, ge=0, description="The longest wait between those tries.")
    smtp_attempts: int = Field(
        default=5, ge=1, description="Sends of one invitation cut off by its worker dying (its claim lapsed) before"
        " `invitation.failed`: an email that kills its worker ends failed, not mailed forever. (Before the retry window"
        " existed it counted SMTP tries.)"
    )
    smtp_connections: int = Field(default=8, ge=1, description="SMTP connections kept open and used at once for batches, per"
                                  " process (plus one kept for small work); a process holds up to 6 claimed emails per"
                                  " connection.")
    smtp_idle_seconds: float = Field(default=30.0, ge=0, description="An SMTP connection idle this long is closed, not reused.")

    template_renderers: int = Field(default=2, ge=1, description="Sandbox processes rendering account templates, per service and"
                                    " worker process.")
    template_timeout_seconds: float = Field(default=1.0, gt=0, description="Longest render of one account template.")
    template_memory_mb: int = Field(default=256, ge=64, description="Address-space limit of a sandbox process.")
    template_quarantine_seconds: float = Field(
        default=600, ge=0, description="How long a template that hit the time or memory bound falls back at once."
    )

    trusted_publishers: str | None = Field(
        default=None,
        description="RabbitMQ users, comma-separated, whose commands may omit `requested_by` and so act as a trusted platform"
        " service (an `accounts.upsert`, which names no acting user, is taken only from a user listed here). They must set"
        " the AMQP `user_id` property, which RabbitMQ refuses"
        " unless it is the publishing connection's own user. Anyone else must name the acting user. A replayed parked"
        " message keeps its original's trust, and only when the operator replaying it is listed too. Unset: every"
        " publisher is trusted, and the first log line (`worker_starting`) says so. Set it in production; the generated"
        " ConfigMap and compose do.",
    )

    link_base_url: str | None = Field(
        default=None,
        description="The invitation page's public URL: the emails' links are `<base>?token=...` (transfer: `&action=accept` /"
        " `&action=decline`). The workers write the links, so set it on them (invitation-mailing at least), and on"
        " `userprov links`, which serves its path; a platform may serve it with a link handler of its own, which publishes"
        " `invitation.accepted` / `invitation.declined` with the token on `userprov.responses`. Unset: the page of"
        " `userprov links` on this machine, `http://<USERPROV_LINKS_HOST>:<USERPROV_LINKS_PORT>/invitation` (127.0.0.1 for"
        " a wildcard host such as 0.0.0.0 or ::), which only a local run can use: a worker whose USERPROV_LINKS_HOST is not"
        " a loopback address logs `link_base_url_unset` at start. Set it in every deployment.",
    )
    links_host: str = Field(default="127.0.0.1", description="`userprov links` listens here (0.0.0.0 in a container); it serves"
                            " the path of USERPROV_LINK_BASE_URL, which, unset, is derived from this and USERPROV_LINKS_PORT.")
    links_port: int = Field(default=8080, ge=1, le=65535, description="`userprov links` listens on this port.")
    links_sign_in_url: str | None = Field(
        default=None, description="The platform's sign-in page, where a person creates their password after accepting;"
        " the page links to it with `login_hint=<email>`. Unset: no such button.",
    )
    links_form_secret: SecretStr | None = Field(
        default=None, description="Signs the page's forms (anti-forgery); the same on every replica of `userprov links`."
        " Unset: a random one per process, which is enough for a single one; when it listens on an address other than"
        " loopback (a deployment, which may have replicas), it logs `links_form_secret_unset` at start.",
    )
    links_wait_seconds: float = Field(
        default=10.0, gt=0, le=60, description="One deadline per request to the page for all it asks of userprov (connecting when"
        " not connected, each publish and its confirm, the answers), past which the page asks the person to reload: a 503"
        " with Retry-After.",
    )
    links_request_seconds: float = Field(
        default=10.0, gt=0, description="A request to the page must have fully arrived this long after its connection opened"
        " (or its previous answer), else 408 and the connection closes: a client sending slowly holds no connection for"
        " long.",
    )
    scim_host: str = Field(default="127.0.0.1", description="`userprov scim serve` listens here (0.0.0.0 in a container).")
    scim_port: int = Field(default=8090, ge=1, le=65535, description="`userprov scim serve` listens on this port.")
    scim_wait_seconds: float = Field(
        default=10.0, gt=0, le=60, description="One deadline per SCIM request for all it asks of userprov (the token's account,"
        " connecting when not connected, each publish and its confirm, the answers), past which it is a 503 with"
        " Retry-After.",
    )
    scim_base_url: str | None = Field(
        default=None, description="Where the identity providers reach SCIM, its /scim/v2 included (https://scim.example.com/scim/v2):"
        " the base of Location and meta.location, whatever a request's Host header says. Unset (logged at start as"
        " `scim_base_url_unset`): each request's scheme and Host header, and a Host that is not a host name or address is a"
        " 400.",
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
        " with Retry-After until it has waited (42 s at most with the defaults), since without a lookup the door cannot"
        " tell its next guess from a real token.",
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
        " is the last address in X-Forwarded-For that is not one of them (uvicorn's proxy headers; `Forwarded` is not"
        " read). Unset: none, not even the loopback address (uvicorn's own default), and the TCP peer is the client. Behind a"
        " load balancer or an ingress set it, else every client counts as the proxy for the per-address limits, and one"
        " client's failed authentications refuse them all.",
    )
    welcome_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1, description="How long a welcome invitation's link"
                                           " works (7 days), from its first email.")
    transfer_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1, description="How long a transfer invitation's link"
                                            " works (7 days), from its first email.")
    resend_cooldown_seconds: int = Field(
        default=60, ge=0, description="Minimum time between two invitations of one member, when the first reached the person:"
        " a looping caller cannot spam a person. invitations.resend within it is refused (resend_cooldown); an invitation"
        " that reactivation issues (users.reactivate, users.update or SCIM active: true) within it waits until it has passed"
        " since that email, so deactivate/reactivate cycles send at most one email per cooldown, the latest invitation's.",
    )

    prefetch_user_creation: int = Field(default=4, ge=1, description="Messages in hand per process for user-creation.")
    prefetch_account_lookup: int = Field(default=16, ge=1, description="Messages in hand per process for account-lookup.")
    prefetch_invitation_mailing: int = Field(
        default=16, ge=1, description="Messages in hand per process for invitation-mailing (signals only: the emails"
        " themselves are claimed from PostgreSQL).",
    )
    prefetch_invitation_response: int = Field(default=16, ge=1, description="Messages in hand per process for"
                                              " invitation-response.")

    delivery_limit: int = Field(default=20, ge=1, description="Deliveries before a message is parked (fixed into the queues when"
                                " they are first declared).")
    transient_retry_seconds: float = Field(
        default=300, ge=0, description="How long a message retries a transient fault (database connection lost, serialization"
        " failure, deadlock) in process, with backoff up to USERPROV_TRANSIENT_BACKOFF_MAX_SECONDS, before it is given back"
        " to the queue."
    )
    transient_backoff_max_seconds: float = Field(default=5.0, ge=0, description="The longest wait between two in-process tries"
                                                 " of a message after a transient fault.")
    reconnect_backoff_max_seconds: float = Field(default=5.0, ge=0, description="The longest wait between two tries to connect"
                                                 " to RabbitMQ again after the connection was lost.")
    outbox_batch_size: int = Field(default=500, ge=1, description="Outbox rows the poller reads and publishes per batch.")
    outbox_poll_seconds: float = Field(default=1.0, gt=0, description="How often the poller looks for outbox rows nobody"
                                       " published.")
    outbox_handover_seconds: float = Field(
        default=5.0, ge=0, description="Events a process committed and has not published within this long are relayed by any process."
    )
    lookup_chunk_size: int = Field(default=200, ge=1, description="Memberships named per `memberships.created` signal.")
    lookup_batch_size: int = Field(default=200, ge=1, description="Memberships decided per account-lookup transaction (small"
                                   " work goes by the express lane whatever this is).")
    scheduler_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often account lookup and mailing look for waiting work that no signal announced (a"
        " lost signal, a dead process's lapsed claims, a retry that came due)."
    )
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, description="How long SIGTERM waits for the messages in hand"
                                          " (those still running then are given back, unacknowledged).")
    lane: Lane = Field(
        default=Lane.ALL,
        description="`all`: the process does everything. `interactive` and `bulk` split it between processes on shared cores:"
        " the interactive lane consumes every service queue, does small work and hands each `users.add` of more than 10"
        " people to the bulk lane, and takes no batch; the bulk lane creates those adds, takes the batches, and consumes"
        " only the bulk queue and the mailing queue's signals, at a lower CPU priority. Run at least one of each.",
    )
    bulk_niceness: int = Field(
        default=10, ge=0, le=19, description="How much a bulk-lane process lowers its CPU priority at start (`nice`; its template"
        " sandboxes inherit it)."
    )

    metrics_port: int | None = Field(default=None, description="Serve Prometheus metrics on this port (`/metrics`); unset: none."
                                    " `userprov scim serve` serves its metrics only here, never on the SCIM port.")
    health_port: int | None = Field(default=None, description="Serve /livez and /readyz on this port.")
    queue_watch_seconds: float = Field(default=15.0, gt=0, description="How often queue depths, consumer counts and the age of"
                                       " waiting work are read for the metrics.")
    ready_check_seconds: float = Field(
        default=2.0, gt=0, description="How often readiness is checked in the background (/readyz answers from the last check)."
    )
    circuit_probe_seconds: float = Field(
        default=2.0, gt=0, description="While PostgreSQL or the SMTP server is down (its circuit open: no new work taken), how"
        " often it is tried again."
    )
    ready_outbox_lag_seconds: float = Field(
        default=60.0, gt=0, description="Not ready while the oldest event waiting in the outbox is older than this."
    )
    inbox_retention_days: int = Field(default=14, ge=1, description="How long processed message ids (and the commands' outcomes"
                                      " for `commands.get`) are kept before they are pruned.")
    housekeeping_interval_seconds: float = Field(default=3600, gt=0, description="How often old message ids and outcomes are"
                                                 " pruned.")
    audit_retention_days: int = Field(default=400, ge=1, description="How long audit entries are kept: older ones are deleted"
                                      " by the housekeeping sweep, which records each account's checkpoint (the seq and hash of"
                                      " the last entry deleted), from which the rest of the chain is verified.")

    tracing: bool = Field(
        default=False, description="Export OpenTelemetry spans over OTLP/HTTP (the standard OTEL_EXPORTER_OTLP_* variables);"
        " needs `pip install 'userprov[otel]'`."
    )

    log_level: str = Field(default="INFO", description="The lowest level logged: DEBUG, INFO, WARNING or ERROR.")
    log_json: bool | None = Field(default=None, description="JSON logs; by default when stderr is not a TTY.")

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(
            renderers=self.template_renderers,
            timeout_seconds=self.template_timeout_seconds,
            memory_mb=self.template_memory_mb,
            quarantine_seconds=self.template_quarantine_seconds,
            slow_seconds=self.template_timeout_seconds / 2,
        )

    @field_validator("scim_base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        wrong = ("it has no https:// (or http://) scheme" if parts.scheme not in ("http", "https") else
                 "it has no host" if not parts.hostname else
                 "it has a query or a fragment" if parts.query or parts.fragment else
                 "it has a user name" if parts.username else None)
        if wrong is not None:
            raise ValueError(f"USERPROV_SCIM_BASE_URL must be an http(s) URL with a host and no query, like"
                             f" https://scim.example.com/scim/v2: {wrong}")
        return value.rstrip("/")

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

    def link_base(self) -> str:
        """The links' base: USERPROV_LINK_BASE_URL, else the page `userprov links` serves with these settings."""
        return self.link_base_url or self.local_link_base()

    def local_link_base(self) -> str:
        """The invitation page of `userprov links` run with these settings, as this machine reaches it."""
        return local_url(self.links_host, self.links_port, "/invitation")

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

    def broker_endpoint(self) -> str:
        """The broker nodes and vhost, never a user name or password: all that a front door connects to."""
        brokers = broker_urls(self.amqp_url)
        return f"{', '.join(node_of(url) for url in brokers)} vhost {vhost_of(brokers[0])}"

    def endpoints(self) -> dict[str, str]:
        """Where a worker connects, for its first log line: hosts, vhost and database, never
        a user name or password."""
        return {
            "broker": self.broker_endpoint(),
            "database": f"{host_of(self.database_url)}/{database_name(self.database_url)}",
            "smtp": f"{self.smtp_host}:{self.smtp_port}" + (" (STARTTLS)" if self.smtp_starttls else ""),
        }

    def prefetch(self, service: str) -> int:
        return int(getattr(self, "prefetch_" + service.replace("-", "_")))


# Settings a release removed, each with what to do instead. A process still starts with one set
# (an upgrade must not fail on a knob that no longer does anything), and the worker logs it.
REMOVED_SETTINGS = {
    "USERPROV_LANE_PRIORITY_DIR": "lanes no longer share a file: the bulk lane's niceness orders a host's processes,"
    " CPU requests a node's pods; remove it (docs/how-to/lanes.md)",
}


def removed_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The removed settings set (not empty) in `environ`, named as Settings reads them (any case)."""
    set_names = {name.upper() for name, value in environ.items() if value}
    return {name: action for name, action in REMOVED_SETTINGS.items() if name in set_names}
