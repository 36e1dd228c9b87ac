"""`userprov links`: the invitation page on uvicorn, until SIGTERM."""
from __future__ import annotations

import secrets

import structlog

from userprov.front_doors.http_server import serve as serve_http
from userprov.front_doors.listening import is_loopback
from userprov.links.app import OUTCOME_EVENTS, create_app
from userprov.links.forms import FormKeys
from userprov.public_bus import PublicBus
from userprov.settings import Settings

log = structlog.get_logger()


def serve(settings: Settings) -> None:
    bus = PublicBus(settings.amqp_url, "userprov links", events=OUTCOME_EVENTS, door="links")
    app = create_app(bus, FormKeys(form_secret(settings)), settings.link_base(), settings.links_sign_in_url,
                     settings.links_wait_seconds, settings.door_limits())
    log.info("links_starting", host=settings.links_host, port=settings.links_port, broker=settings.broker_endpoint())
    serve_http(app, settings.links_host, settings.links_port, settings.links_request_seconds, settings.proxies())


def form_secret(settings: Settings) -> bytes:
    """USERPROV_LINKS_FORM_SECRET, else a random one: a form is then valid only on the process that
    showed it, which matters only where there may be replicas, a deployment (not on loopback)."""
    if settings.links_form_secret is not None:
        return settings.links_form_secret.get_secret_value().encode()
    if is_loopback(settings.links_host):
        log.debug("links_form_secret_unset", consequence="a random one: enough for a single process on this machine")
    else:
        log.warning("links_form_secret_unset", consequence="a form is valid only on the replica that showed it:"
                    " set USERPROV_LINKS_FORM_SECRET, the same on every replica")
    return secrets.token_bytes(32)
