"""Readiness answers from its background check, and a circuit opens only when its probe fails."""
from __future__ import annotations

import asyncio

from userprov.runtime.circuit import Circuit
from userprov.runtime.health import Readiness


class Dependency:
    def __init__(self) -> None:
        self.up = True
        self.probes = 0

    async def __call__(self) -> None:
        self.probes += 1
        if not self.up:
            raise ConnectionRefusedError("down")


def readiness(database: Dependency, circuits: list[Circuit] | None = None, stale_after: float = 10.0) -> Readiness:
    return Readiness(lambda: True, database, lambda: 0.0, 60.0, circuits or [], stale_after=stale_after)


class TestReadiness:
    async def test_not_ready_until_a_check_finished(self) -> None:
        assert readiness(Dependency()).problems() == {"check": "no readiness check has finished yet"}

    async def test_a_burst_of_probes_costs_no_query(self) -> None:
        database = Dependency()
        ready = readiness(database)
        await ready.check()
        answers = [ready.problems() for _ in range(1000)]
        assert answers == [{}] * 1000 and database.probes == 1

    async def test_the_last_check_says_what_is_wrong(self) -> None:
        database = Dependency()
        ready = readiness(database)
        database.up = False
        await ready.check()
        assert ready.problems() == {"database": "the database cannot be reached: ConnectionRefusedError"}

    async def test_a_stale_check_is_no_answer(self) -> None:
        ready = readiness(Dependency(), stale_after=0.01)
        await ready.check()
        await asyncio.sleep(0.05)
        assert "check" in ready.problems()


class TestCircuit:
    async def test_a_fault_the_probe_does_not_confirm_leaves_it_closed(self) -> None:
        dependency = Dependency()
        circuit = Circuit("database", dependency, probe_seconds=0.01)
        assert not await circuit.down(TimeoutError())
        assert not circuit.is_open and dependency.probes == 1

    async def test_opens_while_down_and_closes_when_back(self) -> None:
        dependency, changes = Dependency(), []
        circuit = Circuit("smtp", dependency, probe_seconds=0.01)
        circuit.on_change(changes.append)
        dependency.up = False
        assert await circuit.down(ConnectionRefusedError())
        assert circuit.is_open and changes == [True]
        circuit.report(ConnectionRefusedError())  # while open: no second probe loop
        dependency.up = True
        await asyncio.wait_for(circuit.wait_closed(), 5)
        assert not circuit.is_open and changes == [True, False]
        ready = readiness(Dependency(), [circuit])
        await ready.check()
        assert ready.problems() == {}

    async def test_readiness_names_an_open_circuit(self) -> None:
        dependency = Dependency()
        dependency.up = False
        circuit = Circuit("smtp", dependency, probe_seconds=10)
        assert await circuit.down(OSError())
        ready = readiness(Dependency(), [circuit])
        await ready.check()
        assert ready.problems() == {"smtp": "smtp is down (ConnectionRefusedError): no new work is taken until it is back"}
        circuit.stop()
