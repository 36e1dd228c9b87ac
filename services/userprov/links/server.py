"""`userprov links`: the invitation page on uvicorn, until SIGTERM."""
from __future__ import annotations

import secrets

import structlog

from userprov.front_doors.http_server import serve as serve_http
from userprov.links.app import OUTCOME_EVENTS, create_app
from userprov.links.forms import FormKeys
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
    app = create_app(bus, FormKeys(secret), settings.link_base_url, settings.links_sign_in_url, settings.links_wait_seconds,
                     settings.door_limits())
    log.info("links_starting", host=settings.links_host, port=settings.links_port, broker=settings.broker_endpoint())
    serve_http(app, settings.links_host, settings.links_port, settings.links_request_seconds, settings.proxies())
