"""Limits per client address, in front of a front door's routes: a generous rate of requests
(an identity provider's initial sync comes from one address, quickly) and a strict rate of
failed authentications (a 401, an unknown link), so that guessing tokens stops at the door
rather than on account lookup's queue. An address past either gets 429 with Retry-After
until it has waited; an address past its failures gets it for every request, since the door
cannot tell its next guess from a real token without a lookup. Health probes and metrics
scrapes are never limited.

The client address is the TCP peer, or the address a trusted proxy forwarded (uvicorn's
proxy headers, `USERPROV_TRUSTED_PROXIES`). An IPv6 client is its /64: one host usually has
the whole of one and can take any address in it."""
from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from prometheus_client import Counter
from starlette.responses import Response

from userprov.front_doors.asgi import ASGIApp, Receive, Scope, Send
from userprov.front_doors.token_buckets import Rate, TokenBuckets

CLIENTS = 50_000  # addresses remembered per process (the longest idle forgotten first): a few MB
UNLIMITED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
REFUSED = Counter("userprov_front_door_refused",
                  "Requests a front door refused with 429, by the limit they were past (`requests` or `failures`).", ["limit"])

Refusal = Callable[[Scope, int], Response]  # the door's 429, given the seconds to wait
Failed = Callable[[str, int], bool]  # whether an answer (path, status) is a failed authentication at this door


def client_key(client: Any) -> str:
    """Whom a request's limits count against: its address, an IPv6 address's /64."""
    host = client[0] if isinstance(client, (tuple, list)) and client and isinstance(client[0], str) else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an address (what a trusted proxy forwarded, a Unix socket): taken as it is, bounded
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), 64), strict=False))
    return str(address)


class ClientLimits:
    """Each address's two buckets."""

    def __init__(self, requests: Rate, failures: Rate) -> None:
        self._requests = TokenBuckets(requests, CLIENTS)
        self._failures = TokenBuckets(failures, CLIENTS, debt=failures.burst)

    def admit(self, client: str, now: float) -> tuple[str, float] | None:
        """None: the request may go on (it took a token); else which limit it is past and the
        seconds to wait."""
        if wait := self._failures.wait(client, now):
            return "failures", wait
        if wait := self._requests.take(client, now):
            return "requests", wait
        return None

    def failed(self, client: str, now: float) -> None:
        self._failures.charge(client, now)


class LimitPerClient:
    def __init__(self, app: ASGIApp, limits: ClientLimits, failed: Failed, refuse: Refusal) -> None:
        self._app = app
        self._limits = limits
        self._failed = failed
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNLIMITED_PATHS:
            await self._app(scope, receive, send)
            return
        client = client_key(scope.get("client"))
        refused = self._limits.admit(client, time.monotonic())
        if refused is not None:
            limit, wait = refused
            REFUSED.labels(limit).inc()
            seconds = max(1, math.ceil(wait))
            response = self._refuse(scope, seconds)
            response.headers["Retry-After"] = str(seconds)
            await response(scope, receive, send)
            return

        async def noting(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and self._failed(scope.get("path", ""), message["status"]):
                self._limits.failed(client, time.monotonic())
            await send(message)

        await self._app(scope, receive, noting)
