"""Retention of the audit trail: entries older than USERPROV_AUDIT_RETENTION_DAYS are deleted,
oldest first, a batch per transaction, and each batch records the seq and hash of the last entry
it deleted as the account's checkpoint, in the same transaction: the chain of what is left is
verified from there (userprov.audit.chain.first_break(entries, checkpoint seq, checkpoint hash)).

Per account, `at` never goes back as seq grows (userprov.audit.writing), so the entries older
than the retention are a prefix of the chain: pruning leaves no gap."""
from __future__ import annotations

import asyncpg

BATCH = 10_000

ACCOUNTS_TO_PRUNE = (
    "SELECT account_id FROM audit_heads h WHERE EXISTS (SELECT FROM audit_entries e"
    " WHERE e.account_id = h.account_id AND e.at < now() - make_interval(days => $1))"
)
PRUNE_BATCH = """
WITH doomed AS (
    SELECT seq FROM audit_entries WHERE account_id = $1 AND at < now() - make_interval(days => $2) ORDER BY seq LIMIT $3
), deleted AS (
    DELETE FROM audit_entries e USING doomed d WHERE e.account_id = $1 AND e.seq = d.seq RETURNING e.seq, e.hash
), last AS (
    SELECT seq, hash FROM deleted ORDER BY seq DESC LIMIT 1
), checkpoint AS (
    INSERT INTO audit_checkpoints AS c (account_id, seq, hash) SELECT $1, seq, hash FROM last
    ON CONFLICT (account_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, pruned_at = now()
    WHERE c.seq < EXCLUDED.seq
)
SELECT count(*) FROM deleted
"""


async def prune_audit(pool: asyncpg.Pool, retention_days: int, batch: int = BATCH) -> int:
    """Deletes the entries older than the retention, account by account, `batch` entries per
    transaction (one statement: the entries and the checkpoint); returns how many."""
    removed = 0
    async with pool.acquire() as conn:
        accounts = [r["account_id"] for r in await conn.fetch(ACCOUNTS_TO_PRUNE, retention_days)]
    for account_id in accounts:
        while True:
            async with pool.acquire() as conn:
                count = int(await conn.fetchval(PRUNE_BATCH, account_id, retention_days, batch))
            removed += count
            if count < batch:
                break
    return removed
