"""One line per request, with its path but never its query string (an invitation's token, a
SCIM filter's addresses); and, when given, an observer of each request (metrics)."""
from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from userprov.front_doors.asgi import ASGIApp, Receive, Scope, Send

log = structlog.get_logger()

Observer = Callable[[str, str, int, float], None]  # path, method, status, seconds


class AccessLog:
    """One line per request, with its path but never its query string (the token)."""

    def __init__(self, app: ASGIApp, event: str, observe: Observer | None = None) -> None:
        self._app = app
        self._event = event
        self._observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def noting(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, noting)
        finally:
            seconds, path, method = time.monotonic() - started, scope.get("path", ""), scope.get("method", "")
            log.info(self._event, method=method, path=path[:200], status=status, ms=round(seconds * 1000, 1))
            if self._observe is not None:
                self._observe(path, method, status, seconds)
