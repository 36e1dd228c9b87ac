"""The SCIM 2.0 endpoint at `/scim/v2`: scim2-server's protocol (routing, validation, PATCH,
filters, discovery, errors) over `UserprovStorage`, behind a bearer token of one account, plus
health (metrics are on the metrics port only). A body beyond USERPROV_SCIM_BODY_BYTES is a 413
before it is parsed (at once, unread, when its Content-Length says so). Each request has one deadline, USERPROV_SCIM_WAIT_SECONDS, for everything
it asks of userprov: past it, or while RabbitMQ blocks publishing, it is a 503 with Retry-After."""
from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qsl

import structlog
from prometheus_client import Counter, Histogram
from scim2_models import (
    Error,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.applications.base import VERSION_PREFIX
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount

from userprov.front_doors.access_log import AccessLog
from userprov.front_doors.asgi import ASGIApp
from userprov.front_doors.client_limits import ClientLimits, LimitPerClient
from userprov.front_doors.connection import BUS_ERRORS, bus_lifespan, health_routes
from userprov.front_doors.host_header import request_host
from userprov.front_doors.limits import DoorLimits
from userprov.front_doors.lookup_gate import LookupGate
from userprov.public_bus import PublicBus
from userprov.scim.error_details import plain
from userprov.scim.resources import provider
from userprov.scim.service import UserprovScimService
from userprov.scim.storage import OUTCOME_EVENTS, Unavailable, UserprovStorage
from userprov.scim.tenancy import TokenResolver, acting_for

log = structlog.get_logger()

RETRY_AFTER_SECONDS = 5
REQUESTS = Counter("userprov_scim_requests", "SCIM requests by method and status.", ["method", "status"])
REQUEST_SECONDS = Histogram("userprov_scim_request_seconds", "SCIM requests, from their arrival to their answer.", ["method"],
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


class NoPublicUrl(SCIMException):
    """No USERPROV_SCIM_BASE_URL, and no Host header to take it from."""

    status = 400
    _default_detail = "The Host header is missing or is not a host name or address."


class ClientGone(Exception):
    """The client went away, or was cut off, before its request had fully arrived."""


class ScimApplication(ASGIApplication):
    def __init__(self, storage: UserprovStorage, tokens: TokenResolver, body_bytes: int, wait_seconds: float,
                 base_url: str | None) -> None:
        scim_provider = provider()
        super().__init__(storage, scim_provider, UserprovScimService(scim_provider))
        self._tokens = tokens
        self._body_bytes = body_bytes
        self._wait = wait_seconds
        self._base_url = base_url

    def public_base_url(self, scope: Scope) -> str | None:
        """Where clients reach SCIM, for `Location` and `meta.location`: USERPROV_SCIM_BASE_URL
        (the request's Host is then never read); unset, the request's own scheme and Host, when
        the Host is a host name or address."""
        if self._base_url is not None:
            return self._base_url
        host = request_host(scope)
        return None if host is None else f"{scope['scheme']}://{host}{scope.get('root_path', '')}{VERSION_PREFIX}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientGone:  # its request never fully arrived: nothing of it is done, no one to answer
            pass

    async def read_request(self, scope: Scope, receive: Receive) -> ScimRequest:
        """The request, its body read up to one byte beyond the limit (the rest is never read),
        and not at all when its declared Content-Length is beyond it (413 at once)."""
        request = ScimRequest(
            method=scope["method"], base_url=self.public_base_url(scope) or "", path=self.split_path(self.get_path(scope)),
            query=_query(scope), headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]],
        )
        if self._declared_too_large(request):
            return request
        body, more = b"", True
        while more and len(body) <= self._body_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone, or cut off by the request deadline (408)
                raise ClientGone
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request.body = body[: self._body_bytes + 1]
        return request

    def _declared_too_large(self, request: ScimRequest) -> bool:
        declared = (request.header("Content-Length") or "").strip()
        return declared.isdigit() and int(declared[:20]) > self._body_bytes

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        if self._declared_too_large(request) or (request.body is not None and len(request.body) > self._body_bytes):
            raise PayloadTooLargeException(detail=f"A request body is at most {self._body_bytes} bytes.")
        if not request.base_url:
            raise NoPublicUrl
        try:
            async with asyncio.timeout(self._wait):  # the token, the queries and the commands: one deadline for all
                if self.needs_auth(request):
                    tenant = await self._tokens.tenant_of(request.header("Authorization"))
                    if tenant is None:
                        raise UnauthorizedException(detail="A valid bearer token of a userprov account is required.")
                    acting_for(tenant.account_id, tenant.token_id)
                return await self.handler.handle(request)
        except BUS_ERRORS as error:
            log.warning("scim_userprov_unavailable", error=type(error).__name__)
            raise Unavailable from None

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if isinstance(exception, SCIMException):
            response = self.service.error_response(plain(exception))
            if isinstance(exception, Unavailable):
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        log.exception("scim_request_failed", error=type(exception).__name__)
        return self.service.error_response(exception)

    def finalize_response(self, request: ScimRequest, response: ScimResponse) -> ScimResponse:
        response = super().finalize_response(request, response)
        if response.status != HTTPStatus.CREATED:  # scim2-server adds the request's URL to every answer
            response.headers.pop("Location", None)  # RFC 7644 §3.3: a Location only for what was created
        if response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:  # the rest of its body is never read: nothing more here
            response.headers["Connection"] = "close"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _observe(path: str, method: str, status: int, seconds: float) -> None:
    if path.startswith("/scim/"):  # SCIM requests only, not the probes and scrapes
        REQUESTS.labels(method, str(status)).inc()
        REQUEST_SECONDS.labels(method).observe(seconds)


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))


def create_app(bus: PublicBus, wait_seconds: float, body_bytes: int, token_cache_seconds: float, limits: DoorLimits,
               base_url: str | None = None) -> Starlette:
    """`base_url`: where clients reach SCIM (USERPROV_SCIM_BASE_URL); None: each request's Host."""
    tokens = TokenResolver(bus, wait_seconds, token_cache_seconds, LookupGate(limits.lookups, limits.lookup_wait_seconds))
    scim = ScimApplication(UserprovStorage(bus, wait_seconds), tokens, body_bytes, wait_seconds, base_url)
    app = Starlette(
        routes=[*health_routes(bus), Mount("/scim", app=cast(ASGIApp, scim))],
        lifespan=bus_lifespan(bus, "scim"),
    )
    app.add_middleware(LimitPerClient, limits=ClientLimits(limits.requests, limits.failures),
                       failed=lambda _, status: status == 401, refuse=_too_many)
    app.add_middleware(AccessLog, event="scim_request", observe=_observe)
    return app


def _too_many(_: object, seconds: int) -> Response:
    error = Error(status=429, detail=f"Too many requests from this address; retry in {seconds} s.")
    return Response(error.model_dump_json(), 429, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
                    media_type="application/scim+json")


def scim_bus(amqp_url: str) -> PublicBus:
    return PublicBus(amqp_url, "userprov scim", events=OUTCOME_EVENTS, door="scim")
