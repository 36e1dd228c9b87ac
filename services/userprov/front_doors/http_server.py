"""A front door on uvicorn, until SIGTERM."""
from __future__ import annotations

import signal
from typing import Any

import uvicorn

from userprov.front_doors.slow_clients import with_request_deadline


def serve(app: Any, host: str, port: int, request_seconds: float, trusted_proxies: list[str]) -> None:
    """`trusted_proxies`: whose X-Forwarded-For names the client (uvicorn's proxy headers: the last
    address in it that is not a trusted proxy's); none, the TCP peer is the client."""
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it found:
    # with this one, the process then exits 0, as the workers do
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(uvicorn.Config(
        app, host=host, port=port,
        access_log=False, log_config=None,  # the app logs each request itself, never a query string (a token)
        server_header=False, timeout_keep_alive=5, limit_concurrency=2000, h11_max_incomplete_event_size=32 * 1024,
        timeout_graceful_shutdown=10, http=with_request_deadline(request_seconds),
        # uvicorn's default trusts 127.0.0.1's and ::1's headers: a client on the host could name any address
        proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or None,
    )).run()
