"""uvicorn waits for a request for ever: a client may send it one byte a minute and hold a
connection (slowloris). This protocol gives each request a deadline, from the connection (or
the previous response) until the request has fully arrived; past it the client gets 408 and the
connection closes. Everything else is uvicorn's HTTP/1.1 (h11)."""
from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 16\r\n\r\nRequest Timeout\n"


def with_request_deadline(seconds: float) -> type[H11Protocol]:
    class RequestDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is h11.DONE:  # the whole request is in: the application has it
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is not h11.DONE:
                self._arm()  # the next request on this connection has its own deadline

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _answering(self) -> bool:
            return self.cycle is not None and self.cycle.response_started

        def _too_slow(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state is h11.DONE:
                return
            # nothing answered yet on this connection's current request (none started, or the application
            # still waiting for its body): say why; the application then sees a disconnect
            if self.conn.our_state is h11.IDLE or (self.conn.our_state is h11.SEND_RESPONSE and not self._answering()):
                self.transport.write(TIMEOUT)
            self.transport.close()

    return RequestDeadline
