"""`userprov links`: the invitation page on uvicorn, until SIGTERM."""
from __future__ import annotations

import secrets
import signal

import structlog
import uvicorn

from userprov.links.app import OUTCOME_EVENTS, create_app
from userprov.links.forms import FormKeys
from userprov.links.slow_clients import with_request_deadline
from userprov.public_bus import PublicBus
from userprov.settings import Settings

log = structlog.get_logger()


def serve(settings: Settings) -> None:
    secret = settings.links_form_secret.get_secret_value().encode() if settings.links_form_secret else None
    if secret is None:
        secret = secrets.token_bytes(32)
        log.warning("links_form_secret_unset", consequence="a form is valid only on the replica that showed it:"
                    " set USERPROV_LINKS_FORM_SECRET, the same on every replica")
    bus = PublicBus(settings.amqp_url, "userprov links", events=OUTCOME_EVENTS)
    app = create_app(bus, FormKeys(secret), settings.link_base_url, settings.links_sign_in_url, settings.links_wait_seconds)
    log.info("links_starting", host=settings.links_host, port=settings.links_port, **settings.endpoints())
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it found:
    # with this one, the process then exits 0, as the workers do
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(uvicorn.Config(
        app, host=settings.links_host, port=settings.links_port,
        access_log=False, log_config=None,  # userprov logs each request itself, without its query string (the token)
        server_header=False, timeout_keep_alive=5, limit_concurrency=2000, h11_max_incomplete_event_size=32 * 1024,
        timeout_graceful_shutdown=10, http=with_request_deadline(settings.links_request_seconds),
    )).run()
