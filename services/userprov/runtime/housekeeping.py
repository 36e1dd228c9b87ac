"""Keeps the inbox from growing forever: message ids older than the retention are forgotten,
and the commands' outcomes and recorded delivery failures with them. Audit entries older than
theirs are deleted too (userprov.audit.retention), and the invitations that expired meanwhile
are audited (userprov.audit.expiry).

A message redelivered or republished after that long would take effect again; the retention
is days, while redeliveries come within minutes."""
from __future__ import annotations

import asyncio
import random

import asyncpg
import structlog

from userprov.audit.expiry import audit_expired_invitations
from userprov.audit.retention import prune_audit

log = structlog.get_logger()

BATCH = 10_000


# What is kept only for the retention: each table with the column that dates a row.
RETAINED = (("inbox", "processed_at"), ("command_outcomes", "recorded_at"), ("delivery_failures", "last_failure"))


async def prune_inbox(pool: asyncpg.Pool, retention_days: int) -> int:
    """Deletes rows older than the retention from every table in RETAINED, in batches; returns how many."""
    removed = 0
    for table, dated_by in RETAINED:
        while True:
            async with pool.acquire() as conn:
                # table and column are the constants above; the values are parameters
                status = await conn.execute(
                    f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
                    f" WHERE {dated_by} < now() - make_interval(days => $1) LIMIT $2))",
                    retention_days,
                    BATCH,
                )
            count = int(status.split()[-1])
            removed += count
            if count < BATCH:
                break
    return removed


async def run_housekeeping(pool: asyncpg.Pool, retention_days: int, interval: float, audit_retention_days: int) -> None:
    while True:
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))  # several processes spread out
        try:
            removed = await prune_inbox(pool, retention_days)
            log.info("inbox_pruned", removed=removed)
        except Exception as error:  # noqa: BLE001 - housekeeping must not stop a worker
            log.warning("inbox_prune_failed", error=repr(error))
        try:
            expired = await audit_expired_invitations(pool)
            removed = await prune_audit(pool, audit_retention_days)
            log.info("audit_swept", expired_invitations=expired, removed=removed)
        except Exception as error:  # noqa: BLE001
            log.warning("audit_prune_failed", error=repr(error))
