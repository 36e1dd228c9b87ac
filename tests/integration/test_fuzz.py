"""The hostile-message fuzz suite: generated bodies and properties for every routing key,
published to the real workers. Invariants: every message is settled within a bound, each one
userprov must refuse gets its `command.rejected`, no worker crashes or reconnects, and a stream
of good commands beside it keeps going (its throughput with and without the fuzz is printed).

The short run is part of the normal suite; `pytest -m soak tests/integration/test_fuzz.py`
runs the long one (10,000 messages)."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aio_pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import routing
from tests.support.flows import add_users
from tests.support.fuzz import ACCOUNT, FuzzMessage, fuzz_messages
from tests.support.hostile import publish_on
from tests.support.infra import Infra, message_counts
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

SETTLE_SECONDS = 60  # for a whole batch, most of it 2 MB bodies and trial renders on a loaded 2-core machine


class Rejections:
    """The `command.rejected` events seen so far, by correlation id and command id, read from
    the bus's recording incrementally (a rescan per check would be quadratic)."""

    def __init__(self, bus: BusClient) -> None:
        self._bus = bus
        self._read = 0
        self._seen: set[tuple[str, str]] = set()

    def __contains__(self, tag: tuple[str, str]) -> bool:
        events = self._bus.events
        for event in events[self._read :]:
            if event.routing_key == routing.COMMAND_REJECTED:
                self._seen.add(("correlation_id", event.correlation_id or ""))
                self._seen.add(("command_id", str(event.body.get("command_id"))))
        self._read = len(events)
        return tag in self._seen


@dataclass
class FuzzReport:
    published: int = 0
    expected_refusals: int = 0
    refusals_found: int = 0
    untagged: int = 0
    batches: int = 0
    slowest_batch_settle: float = 0.0
    missing: list[FuzzMessage] = field(default_factory=list)


def queued(infra: Infra) -> int:
    counts = message_counts(infra.vhost)
    return sum(counts.get(name, 0) for name in routing.work_queue_names())


def connections_made(workers: list[WorkerProcess]) -> int:
    return sum(w.count_log('"broker_connected"') for w in workers)


async def good_stream(bus: BusClient, account_id: str, count: int, in_flight: int = 4) -> float:
    """One-user users.add commands, `in_flight` at a time; commands completed per second."""
    started = time.monotonic()
    slots = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        async with slots:
            done = await add_users(bus, {"account_id": account_id, "users": [
                {"first_name": "Good", "last_name": f"Stream{n}", "email": f"good{n}.{uuid.uuid4().hex[:8]}@example.com"}]}, timeout=120)
            assert done.routing_key == routing.USERS_ADD_COMPLETED, done.body

    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.monotonic() - started)


async def publish_and_check(batch: list[FuzzMessage], connection: aio_pika.abc.AbstractConnection, rejections: Rejections,
                            infra: Infra, report: FuzzReport) -> None:
    started = time.monotonic()
    for message in batch:
        await publish_on(connection, message.routing_key, message.body, message_id=message.message_id,
                         correlation_id=message.correlation_id, reply_to=message.reply_to, headers=message.headers)
    report.published += len(batch)
    report.batches += 1
    await eventually(lambda: queued(infra) == 0, SETTLE_SECONDS, what="every fuzz message settled")
    report.slowest_batch_settle = max(report.slowest_batch_settle, time.monotonic() - started)
    expected = [m for m in batch if m.expected_refusal()]
    report.expected_refusals += len(expected)

    def found(message: FuzzMessage) -> bool:
        assert message.tag is not None
        return message.tag in rejections

    tagged = [m for m in expected if m.tag is not None]
    report.untagged += len(expected) - len(tagged)
    try:
        await eventually(lambda: all(found(m) for m in tagged), 20, what="a command.rejected for each refused message")
    except TimeoutError:
        report.missing += [m for m in tagged if not found(m)]
    report.refusals_found += sum(found(m) for m in tagged)


async def run_fuzz(bus: BusClient, infra: Infra, workers: list[WorkerProcess], account, batches: int, batch_size: int,
                   good_commands: int) -> FuzzReport:
    await account(account_id=ACCOUNT, licences={"gotomeeting": 100_000})
    good_account = await account(licences={"gotomeeting": 100_000})
    baseline = await good_stream(bus, good_account, good_commands)
    connections_before = connections_made(workers)
    report = FuzzReport()
    rejections = Rejections(bus)
    connection = await aio_pika.connect(infra.amqp_url)

    async def fuzz() -> None:
        for _ in range(batches):
            await publish_and_check(generate(fuzz_messages(), batch_size), connection, rejections, infra, report)

    try:
        _, during = await asyncio.gather(fuzz(), good_stream(bus, good_account, good_commands))
    finally:
        await connection.close()
    print(f"\nfuzz: {report.published} messages in {report.batches} batches; {report.expected_refusals} to refuse, "
          f"{report.refusals_found} command.rejected found, {report.untagged} untraceable (both ids hostile); "
          f"slowest batch settled in {report.slowest_batch_settle:.1f}s; good commands/s {baseline:.1f} alone, "
          f"{during:.1f} beside the fuzz (ratio {during / baseline:.2f})")
    assert not report.missing, [(m.routing_key, m.message_id, m.correlation_id, m.reply_to, m.body[:80]) for m in report.missing[:5]]
    assert all(w.running for w in workers), "a worker crashed"
    assert connections_made(workers) == connections_before, "a worker lost its broker connection"
    return report


def generate(strategy: st.SearchStrategy[FuzzMessage], count: int) -> list[FuzzMessage]:
    """`count` examples as hypothesis explores the strategy. They are checked against the running
    system as a batch, so hypothesis generates and the test drives them (no shrinking)."""
    drawn: list[FuzzMessage] = []
    while len(drawn) < count:

        @settings(max_examples=count - len(drawn), database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def take(example: FuzzMessage) -> None:
            drawn.append(example)

        take()
    return drawn[:count]


class TestFuzz:
    async def test_short_fuzz(self, bus: BusClient, infra: Infra, workers: list[WorkerProcess], account) -> None:
        report = await run_fuzz(bus, infra, workers, account, batches=4, batch_size=50, good_commands=20)
        assert report.published == 200 and report.expected_refusals > 50

    @pytest.mark.soak
    async def test_long_fuzz(self, bus: BusClient, infra: Infra, workers: list[WorkerProcess], account) -> None:
        report = await run_fuzz(bus, infra, workers, account, batches=100, batch_size=100, good_commands=400)
        assert report.published == 10_000
