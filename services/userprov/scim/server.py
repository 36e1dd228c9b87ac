"""`userprov scim serve`: the SCIM endpoint on uvicorn, until SIGTERM."""
from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from prometheus_client import start_http_server

from userprov.front_doors.http_server import serve as serve_http
from userprov.front_doors.listening import is_loopback
from userprov.scim.app import create_app, scim_bus
from userprov.settings import Settings

log = structlog.get_logger()


def sent_in_clear(base_url: str) -> bool:
    """An http:// URL whose host is not the loopback: tokens would cross a network unencrypted."""
    parts = urlsplit(base_url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def serve(settings: Settings) -> None:
    app = create_app(scim_bus(settings.amqp_url), settings.scim_wait_seconds, settings.scim_body_bytes,
                     settings.scim_token_cache_seconds, settings.door_limits(), settings.scim_base_url)
    if settings.metrics_port is not None:  # never on the SCIM port, which the identity providers reach
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    if settings.scim_base_url is None:
        log.warning("scim_base_url_unset", consequence="Location and meta.location follow each request's Host header and"
                    " scheme: set USERPROV_SCIM_BASE_URL to the URL the identity providers use")
    if settings.scim_base_url is not None and sent_in_clear(settings.scim_base_url):
        log.warning("scim_base_url_not_https", consequence="identity providers send their bearer tokens unencrypted to"
                    " USERPROV_SCIM_BASE_URL: use https:// unless it is this host's loopback")
    log.info("scim_starting", host=settings.scim_host, port=settings.scim_port, broker=settings.broker_endpoint())
    serve_http(app, settings.scim_host, settings.scim_port, settings.scim_request_seconds, settings.proxies())
