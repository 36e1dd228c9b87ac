"""A front door on uvicorn, until SIGTERM."""
from __future__ import annotations

import signal
from typing import Any

import uvicorn

from userprov.front_doors.slow_clients import with_request_deadline


def serve(app: Any, host: str, port: int, request_seconds: float) -> None:
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it found:
    # with this one, the process then exits 0, as the workers do
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(uvicorn.Config(
        app, host=host, port=port,
        access_log=False, log_config=None,  # the app logs each request itself, never a query string (a token)
        server_header=False, timeout_keep_alive=5, limit_concurrency=2000, h11_max_incomplete_event_size=32 * 1024,
        timeout_graceful_shutdown=10, http=with_request_deadline(request_seconds),
    )).run()
