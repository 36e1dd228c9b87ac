"""Seat assignments and the per-licence counters kept beside them (one place changes both)."""
from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def assign(conn: asyncpg.Connection, account_id: str, membership_ids: Sequence[UUID], products: Sequence[str]) -> None:
    """Gives every membership one seat of every product; the CHECK on the counter refuses an oversell."""
    await conn.execute(
        "WITH assigned AS (INSERT INTO seat_assignments (membership_id, account_id, product)"
        "  SELECT m, $1, p FROM unnest($2::uuid[]) AS m CROSS JOIN unnest($3::text[]) AS p RETURNING product)"
        " UPDATE account_licences l SET seats_used = l.seats_used + a.n"
        " FROM (SELECT product, count(*) AS n FROM assigned GROUP BY product) a"
        " WHERE l.account_id = $1 AND l.product = a.product",
        account_id,
        list(membership_ids),
        list(products),
    )


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
