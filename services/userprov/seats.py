"""Seat assignments and the per-licence counters kept beside them (one place changes both)."""
from __future__ import annotations

from uuid import UUID

import asyncpg


def assign_cte(account_id: str, membership_ids: str, products: str) -> str:
    """SQL of CTEs that give every membership of `membership_ids` (a uuid[] expression) one seat
    of every product of `products` (a text[] expression) in the account, with the counters: for a
    statement that creates the memberships too. The CHECK on the counter refuses an oversell."""
    return (
        f"seats_assigned AS (INSERT INTO seat_assignments (membership_id, account_id, product)"
        f" SELECT m, {account_id}, p FROM unnest({membership_ids}) AS m CROSS JOIN unnest({products}) AS p RETURNING product),"
        f" seats_counted AS (UPDATE account_licences l SET seats_used = l.seats_used + a.n"
        f" FROM (SELECT product, count(*) AS n FROM seats_assigned GROUP BY product) a"
        f" WHERE l.account_id = {account_id} AND l.product = a.product)"
    )


async def without_free_seat(conn: asyncpg.Connection, account_id: str, products: list[str]) -> list[str]:
    """Which of the products the account has no free seat of (or no licence for any more)."""
    free = dict(await conn.fetch(
        "SELECT product, seats_total - seats_used FROM account_licences WHERE account_id = $1 AND product = ANY($2::text[])",
        account_id, products))
    return [p for p in products if free.get(p, 0) < 1]


async def assign(conn: asyncpg.Connection, membership_id: UUID, account_id: str, products: list[str]) -> None:
    """One seat of every product for an existing membership, with the counters."""
    if products:
        await conn.execute(f"WITH {assign_cte('$2::text', 'ARRAY[$1::uuid]', '$3::text[]')} SELECT 1", membership_id, account_id, products)


async def release(conn: asyncpg.Connection, membership_id: UUID) -> dict[str, int]:
    """Releases every seat the membership holds; returns the seats released per product."""
    rows = await conn.fetch(
        "DELETE FROM seat_assignments WHERE membership_id = $1 RETURNING account_id, product", membership_id
    )
    if rows:
        await conn.execute(
            "UPDATE account_licences SET seats_used = seats_used - 1 WHERE account_id = $1 AND product = ANY($2::text[])",
            rows[0]["account_id"],
            [r["product"] for r in rows],
        )
    return {r["product"]: 1 for r in rows}
