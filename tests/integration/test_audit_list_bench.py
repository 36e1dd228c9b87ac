"""How fast `audit.list` answers on an account of 100,000 entries: p50 and p99 of the round trip
over the bus (publish, the worker's read, the answer), for the first page and a deep page (past
seq 50,000) of each filter, 100 entries a page. Long: `pytest -m bench
tests/integration/test_audit_list_bench.py -s` prints the table."""
from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from contracts import routing
from contracts.queries import AuditList
from tests.support.audit_chains import START, append, person
from userprov.account_lookup import audit_cursor
from userprov_devtools.bus_client import BusClient

pytestmark = pytest.mark.bench
ENTRIES = 100_000
ROUNDS = 60


async def in_process(db: asyncpg.Pool, query: dict[str, Any]) -> list[float]:
    """The handler alone, as account-lookup runs it: its SQL in a read-only snapshot."""
    from userprov.account_lookup.audit_trail import list_audit
    from userprov.runtime.publisher import trusted_publisher

    trusted_publisher.set(True)  # as the session's workers judge the test's publisher
    asked, seconds = AuditList.model_validate(query), []
    async with db.acquire() as conn:
        for _ in range(ROUNDS + 1):
            started = time.perf_counter()
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await list_audit(asked, conn)
            seconds.append(time.perf_counter() - started)
    return seconds[1:]


async def timed(bus: BusClient, query: dict[str, Any]) -> list[float]:
    answer = await bus.query(routing.AUDIT_LIST, query)  # the first: a plan and a warm cache
    assert "entries" in answer, answer
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = await bus.query(routing.AUDIT_LIST, query)
        seconds.append(time.perf_counter() - started)
        assert "entries" in answer, answer
    return seconds


def p(seconds: list[float], q: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[q - 1] * 1000


async def test_p50_and_p99_on_100000_entries(bus: BusClient, db: asyncpg.Pool, account) -> None:
    account_id = await account()
    for _ in range(ENTRIES // 10_000):
        await append(db, account_id, 10_000, people=1000)
    await db.execute("ANALYZE audit_entries")
    user_id, email = person(123, account_id)
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "user_id": {"user_id": str(user_id)},
        "email": {"email": email},
        "actions (1 in 6)": {"actions": ["user.removed"]},
        "actions (none match)": {"actions": ["scim_token.added"]},
        "since (last 10,000)": {"since": (START + timedelta(minutes=ENTRIES - 10_000)).isoformat()},  # a minute apart
        "since+until (20,000 in the middle)": {"since": (START + timedelta(minutes=40_000)).isoformat(),
                                              "until": (START + timedelta(minutes=60_000)).isoformat()},
    }
    rows = []
    for name, asked in filters.items():
        query = {"account_id": account_id, "limit": 100, **asked}
        deep = {**query, "cursor": audit_cursor.encode(AuditList.model_validate(query), 50_001)}
        first, deeper = await timed(bus, query), await timed(bus, deep)
        alone = [await in_process(db, query), await in_process(db, deep)]
        rows.append(f"| {name} | {p(first, 50):.1f} / {p(first, 99):.1f} | {p(deeper, 50):.1f} / {p(deeper, 99):.1f} |"
                    f" {p(alone[0], 50):.1f} / {p(alone[0], 99):.1f} | {p(alone[1], 50):.1f} / {p(alone[1], 99):.1f} |")
    print("\n| filter | bus, first page p50 / p99 ms | bus, past seq 50,000 | handler alone, first page | handler alone, past 50,000 |"
          "\n|---|---|---|---|---|\n" + "\n".join(rows))

