"""The front doors' limits: a token bucket per client address, whom a request counts against,
and the gate on lookups in flight."""
from __future__ import annotations

import asyncio

import pytest

from userprov.front_doors.client_limits import ClientLimits, client_key
from userprov.front_doors.lookup_gate import LookupGate, LookupsBusy
from userprov.front_doors.token_buckets import Rate, TokenBuckets
from userprov_devtools.waiting import eventually


class TestTokenBuckets:
    def test_a_burst_then_the_rate_and_the_wait_until_the_next_token(self) -> None:
        buckets = TokenBuckets(Rate(per_second=2, burst=3), keys=10)
        assert [buckets.take("a", 100.0) for _ in range(3)] == [0, 0, 0]
        assert buckets.take("a", 100.0) == pytest.approx(0.5)  # refused: half a second to the next token
        assert buckets.take("a", 100.25) == pytest.approx(0.25)  # a refusal takes nothing
        assert buckets.take("a", 100.5) == 0
        assert buckets.take("b", 100.5) == 0  # every key has its own
        assert buckets.level("a", 1000.0) == 3  # never more than the burst, however long it waited

    def test_a_charge_goes_below_empty_down_to_the_debt(self) -> None:
        buckets = TokenBuckets(Rate(per_second=0.5, burst=2), keys=10, debt=2)
        for _ in range(10):
            buckets.charge("a", 0.0)
        assert buckets.level("a", 0.0) == -2
        assert buckets.wait("a", 0.0) == pytest.approx(6.0)  # back to one token at 0.5 a second
        assert buckets.wait("a", 6.0) == 0

    def test_memory_is_bounded_the_longest_unused_forgotten_first(self) -> None:
        buckets = TokenBuckets(Rate(per_second=1, burst=1), keys=3)
        for key in ("a", "b", "c"):
            buckets.take(key, 0.0)
        buckets.take("a", 0.0)  # used again: now the most recent
        buckets.take("d", 0.0)
        assert len(buckets) == 3
        assert buckets.wait("a", 0.0) > 0 and buckets.wait("b", 0.0) == 0  # b was forgotten (a full bucket again)

    def test_a_rate_of_nothing_never_refills(self) -> None:
        buckets = TokenBuckets(Rate(per_second=0, burst=1), keys=3)
        assert buckets.take("a", 0.0) == 0 and buckets.take("a", 1e9) == float("inf")


class TestClientLimits:
    def test_failures_refuse_every_request_of_the_address_until_it_waited(self) -> None:
        limits = ClientLimits(requests=Rate(100, 100), failures=Rate(1, 2))
        assert limits.admit("192.0.2.1", 0.0) is None
        for _ in range(5):
            limits.failed("192.0.2.1", 0.0)
        assert limits.admit("192.0.2.1", 0.0) == ("failures", pytest.approx(3.0))  # at most the burst in debt
        assert limits.admit("192.0.2.2", 0.0) is None
        assert limits.admit("192.0.2.1", 3.0) is None


class TestClientKey:
    @pytest.mark.parametrize(("client", "key"), [
        (("192.0.2.7", 5000), "192.0.2.7"),
        (("2001:db8:1:2:3:4:5:6", 443), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 443), "2001:db8:1:2::/64"),  # the same host's other address
        (("::ffff:192.0.2.7", 1), "192.0.2.7"),
        (("fe80::1%eth0", 1), "fe80::/64"),
        (("unknown", 0), "unknown"),
        (("x" * 10_000, 0), "x" * 64),
        (None, ""),
        ((), ""),
        ((b"192.0.2.7", 1), ""),
    ])
    def test_whom_a_request_counts_against(self, client: object, key: str) -> None:
        assert client_key(client) == key


class TestLookupGate:
    async def test_at_most_the_cap_in_flight_then_a_bounded_wait_then_busy(self) -> None:
        gate = LookupGate(in_flight=2, wait_seconds=0.2)
        release = asyncio.Event()
        in_flight = 0
        most = 0

        async def lookup() -> str:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await release.wait()
            in_flight -= 1
            return "answer"

        held = [asyncio.create_task(gate.ask(None, lookup)) for _ in range(5)]
        await eventually(lambda: sum(task.done() for task in held) == 3, timeout=5, what="three lookups refused")
        assert most == 2
        busy = [task for task in held if task.done() and isinstance(task.exception(), LookupsBusy)]
        assert len(busy) == 3
        release.set()
        assert [await task for task in held if task not in busy] == ["answer", "answer"]
        assert await gate.ask(None, lookup) == "answer"  # every place came back

    async def test_a_place_passes_on_known_tokens_first_then_in_order(self) -> None:
        gate = LookupGate(in_flight=1, wait_seconds=5)
        order: list[str] = []
        first = asyncio.Event()

        async def lookup(name: str, hold: asyncio.Event | None = None) -> None:
            order.append(name)
            if hold is not None:
                await hold.wait()

        holding = asyncio.create_task(gate.ask(None, lambda: lookup("holding", first)))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(gate.ask(None, lambda n=n: lookup(n), known=n == "known")) for n in ("new1", "new2", "known")]  # type: ignore[misc]
        await asyncio.sleep(0)
        first.set()
        await asyncio.gather(holding, *waiting)
        assert order == ["holding", "known", "new1", "new2"]

    async def test_concurrent_lookups_of_one_key_are_asked_once(self) -> None:
        gate = LookupGate(in_flight=4, wait_seconds=1)
        asked = 0
        release = asyncio.Event()

        async def lookup() -> str:
            nonlocal asked
            asked += 1
            await release.wait()
            return "account"

        together = [asyncio.create_task(gate.ask("token", lookup)) for _ in range(10)]
        await asyncio.sleep(0)
        together[0].cancel()  # a request that went away does not take the answer from the others
        release.set()
        assert [await task for task in together[1:]] == ["account"] * 9 and asked == 1
        assert await gate.ask("token", lookup) == "account" and asked == 2  # a later lookup is asked again

    async def test_a_failed_lookup_fails_each_that_waited_for_it(self) -> None:
        gate = LookupGate(in_flight=1, wait_seconds=1)

        async def lookup() -> str:
            await asyncio.sleep(0.01)
            raise ConnectionError("lost")

        answers = await asyncio.gather(*(gate.ask("token", lookup) for _ in range(3)), return_exceptions=True)
        assert [type(answer) for answer in answers] == [ConnectionError] * 3
        assert await gate.ask(None, _answer) == "fine"  # its place came back

    async def test_a_waiter_cancelled_as_its_turn_came_hands_the_place_on(self) -> None:
        gate = LookupGate(in_flight=1, wait_seconds=5)
        release = asyncio.Event()

        async def holding() -> str:
            await release.wait()
            return "held"

        async def first_then_cancel_the_second() -> str:
            held = await gate.ask(None, holding)
            second.cancel()  # in the step that handed it the place, before it ran again
            return held

        first = asyncio.create_task(first_then_cancel_the_second())
        await asyncio.sleep(0)
        second = asyncio.create_task(gate.ask(None, _answer))
        third = asyncio.create_task(gate.ask(None, _answer))
        await asyncio.sleep(0)
        release.set()
        assert await first == "held"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert await asyncio.wait_for(third, 1) == "fine"
        assert await asyncio.wait_for(gate.ask(None, _answer), 1) == "fine"


async def _answer() -> str:
    return "fine"
