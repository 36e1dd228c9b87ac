"""Keeps the inbox from growing forever: message ids older than the retention are forgotten,
and the commands' outcomes and recorded delivery failures with them.

A message redelivered or republished after that long would take effect again; the retention
is days, while redeliveries come within minutes."""
from __future__ import annotations

import asyncio
import random

import asyncpg
import structlog

from userprov.runtime import failures, outcomes

log = structlog.get_logger()

BATCH = 10_000


async def prune_inbox(pool: asyncpg.Pool, retention_days: int) -> int:
    """Deletes processed message ids older than the retention, in batches; returns how many."""
    removed = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM inbox"
                " WHERE processed_at < now() - make_interval(days => $1) LIMIT $2))",
                retention_days,
                BATCH,
            )
            count = int(status.split()[-1])
            count += await outcomes.prune(conn, retention_days, BATCH)
            count += await failures.prune(conn, retention_days, BATCH)
        removed += count
        if count < BATCH:
            return removed


async def run_housekeeping(pool: asyncpg.Pool, retention_days: int, interval: float) -> None:
    while True:
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))  # several processes spread out
        try:
            removed = await prune_inbox(pool, retention_days)
            log.info("inbox_pruned", removed=removed)
        except Exception as error:  # noqa: BLE001 - housekeeping must not stop a worker
            log.warning("inbox_prune_failed", error=repr(error))
