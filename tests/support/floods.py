"""Floods of made-up tokens against a front door, from loopback addresses of their own (127.0.0.0/8
is all loopback), while real clients use the door from another address: what each got, how fast."""
from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contracts import routing
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

FLOOD_ADDRESS = "127.0.0.9"
REAL_ADDRESS = "127.0.0.2"


def made_up_token() -> str:
    """The shape of a token userprov issues (43 characters of base64url), never one it issued."""
    return secrets.token_urlsafe(32)


@asynccontextmanager
async def client_at(local_address: str, connections: int = 10, **options: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from `local_address`."""
    transport = httpx.AsyncHTTPTransport(local_address=local_address, limits=httpx.Limits(max_connections=connections))
    async with httpx.AsyncClient(transport=transport, timeout=30, **options) as client:  # type: ignore[arg-type]
        yield client


@dataclass
class Flood:
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # transport errors: the door did not answer
    seconds: float = 0.0
    refused_headers: dict[str, str] = field(default_factory=dict)  # of the first 429, when there was one
    refused_body: str | None = None
    lasted: bool = False  # still flooding when told to stop (it had not sent all it may)

    def summary(self) -> str:
        total = sum(self.statuses.values()) + len(self.failures)
        return (f"{total} requests in {self.seconds:.2f} s ({total / self.seconds:.0f}/s):"
                f" {dict(sorted(self.statuses.items()))}, {len(self.failures)} unanswered")


async def flood(url: str, sources: Sequence[str], header: str | None = None, total: int = 1500, in_parallel: int = 100,
                under_way: asyncio.Event | None = None, until: asyncio.Event | None = None) -> Flood:
    """Up to `total` requests, `in_parallel` at a time, the n-th from `sources[n % len(sources)]`,
    each with a made-up token for `{token}` in `url` and `header` (`Name: value`); `under_way` is
    set once the first `in_parallel` were answered, and the flood stops when `until` is set (its
    `lasted` says whether it was still going then). In a process of its own, as an attacker is: the
    real clients' times are the door's, not this client's."""
    command = [sys.executable, "-m", "tests.support.floods", url, ",".join(sources), str(total), str(in_parallel), header or ""]
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                   cwd=Path(__file__).parents[2])
    assert process.stdin is not None and process.stdout is not None

    async def stop_when_told() -> None:
        assert process.stdin is not None
        if until is not None:
            await until.wait()
            process.stdin.write(b"stop\n")
            await process.stdin.drain()
        process.stdin.close()

    stopping = asyncio.create_task(stop_when_told())
    try:
        started = await process.stdout.readline()
        assert started == b"under way\n", started
        if under_way is not None:
            under_way.set()
        out = await process.stdout.read()
        assert await process.wait() == 0, out
    finally:
        stopping.cancel()
        if process.returncode is None:
            process.kill()
            await process.wait()
    found = json.loads(out)
    return Flood(Counter({int(k): v for k, v in found["statuses"].items()}), found["failures"], found["seconds"],
                 found["refused_headers"], found["refused_body"], found["lasted"])


async def _flood_here(url: str, sources: Sequence[str], header: str, total: int, in_parallel: int) -> Flood:
    result = Flood()
    per_source = max(1, in_parallel // len(sources))
    clients = [httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source, limits=httpx.Limits(max_connections=per_source)),
                                 timeout=30) for source in sources]
    left = iter(range(total))
    name, _, value = header.partition(":")
    loop, stop, answered = asyncio.get_running_loop(), asyncio.Event(), 0

    def stop_when_told() -> None:  # a line "stop" on stdin; its end alone does not stop the flood
        if sys.stdin.readline() == "stop\n":
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=stop_when_told, daemon=True).start()

    async def one_at_a_time() -> None:
        nonlocal answered
        for n in left:
            if stop.is_set():
                return
            token = made_up_token()
            headers = {name.strip(): value.strip().replace("{token}", token)} if header else {}
            try:
                answer = await clients[n % len(clients)].get(url.replace("{token}", token), headers=headers)
            except httpx.TransportError as error:
                result.failures.append(type(error).__name__)
                continue
            finally:
                answered += 1
                if answered == min(in_parallel, total):
                    print("under way", flush=True)
            result.statuses[answer.status_code] += 1
            if answer.status_code == 429 and result.refused_body is None:
                result.refused_headers, result.refused_body = dict(answer.headers), answer.text

    started = time.monotonic()
    try:
        await asyncio.gather(*(one_at_a_time() for _ in range(in_parallel)))
    finally:
        result.seconds = time.monotonic() - started
        result.lasted = stop.is_set()
        for client in clients:
            await client.aclose()
    return result


@dataclass
class RealUse:
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.seconds:
            return "none"
        return (f"{len(self.seconds)}, median {statistics.median(self.seconds) * 1000:.0f} ms,"
                f" max {max(self.seconds) * 1000:.0f} ms, statuses {dict(Counter(self.statuses))}")


async def every(interval: float, request: Callable[[], Awaitable[httpx.Response]], until: asyncio.Event | None = None,
                at_least: int = 0, into: RealUse | None = None) -> RealUse:
    """`request` once every `interval`, at least `at_least` times and until `until` is set; what
    each got is added to `into` as it comes, when given."""
    use = into if into is not None else RealUse()
    while len(use.seconds) < at_least or (until is not None and not until.is_set()):
        started = time.monotonic()
        answer = await request()
        use.seconds.append(time.monotonic() - started)
        use.statuses.append(answer.status_code)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))  # the pace of a client, not a wait for an outcome
    return use


async def welcome_seconds(bus: BusClient, smtp: RecordingSmtpServer, account_id: str, person: str, timeout: float = 30) -> float:
    """From publishing `users.add` of one person until their welcome email has arrived."""
    published = time.time()
    await bus.publish(routing.USERS_ADD, {"account_id": account_id,
                                          "users": [{"first_name": "Wel", "last_name": "Come", "email": person}]})
    [arrived, *_] = await eventually(lambda: smtp.arrivals(person), timeout, interval=0.02, what="the welcome email")
    return arrived - published


if __name__ == "__main__":
    url, sources, total, in_parallel, header = sys.argv[1:6]
    done = asyncio.run(_flood_here(url, sources.split(","), header, int(total), int(in_parallel)))
    print(json.dumps({"statuses": done.statuses, "failures": done.failures, "seconds": done.seconds,
                      "refused_headers": done.refused_headers, "refused_body": done.refused_body, "lasted": done.lasted}))
