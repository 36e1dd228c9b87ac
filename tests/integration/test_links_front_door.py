"""What the invitation page's port says about where it runs: nothing. Its readiness names no
broker host or port, any Host header is a clear answer (never a 500), and its start line names
only the broker, the one thing it connects to."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from tests.support.infra import Infra
from tests.support.raw_http import HOSTILE_HOSTS, exchange, get


class TestLinksFrontDoor:
    async def test_readiness_names_no_address(self, links) -> None:
        base, _ = links
        async with httpx.AsyncClient() as http:
            ready = await http.get(base.rsplit("/", 1)[0] + "/readyz")
        assert (ready.status_code, ready.text) == (200, "ready")

    async def test_any_host_header_gets_a_clear_answer(self, links) -> None:
        base, _ = links
        port = urlsplit(base).port
        assert port is not None
        for what, host in HOSTILE_HOSTS.items():
            for version in ("HTTP/1.1", "HTTP/1.0"):
                for path, expected in (("/invitation", 404), ("/readyz", 200), ("/invitation/static/page.css", 200)):
                    status, _, body = await exchange(port, get(path, host, version))
                    if host is None and version == "HTTP/1.1":
                        expected = 400  # uvicorn's (h11's): HTTP/1.1 requires a Host
                    assert status == expected, (what, version, path, status, body[:300])

    def test_the_start_line_names_only_the_broker(self, links, infra: Infra) -> None:
        _, process = links
        [starting] = [json.loads(line) for line in process.lines() if '"links_starting"' in line]
        assert starting["broker"].endswith(f"vhost {infra.vhost}")
        assert "database" not in starting and "smtp" not in starting
