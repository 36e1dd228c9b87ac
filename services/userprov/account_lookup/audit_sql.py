"""The SQL of `audit.list`: a page of an account's entries by keyset on (account_id, seq), so that
a deep page costs what the first does, and the account's checkpoint and head."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from userprov.audit.chain import GENESIS

_COLUMNS = ("seq, at, action, actor_kind, actor_id, target_user_id, target_email, changes::text AS changes, via, message_id,"
            " correlation_id, hash")


@dataclass(frozen=True)
class EntryFilter:
    since: datetime | None = None
    until: datetime | None = None
    user_id: UUID | None = None
    email: str | None = None
    actions: tuple[str, ...] | None = None


def page_sql(match: EntryFilter, newest_first: bool, after: int | None) -> tuple[str, list[object]]:
    """The statement and its parameters after $1 (the account) and $2 (the limit). Only the
    conditions asked for are written, so that each combination gets a plan that uses its index
    (audit_entries_by_user, _by_email, the primary key); their values are always parameters."""
    conditions, values = ["account_id = $1"], []

    def condition(template: str, value: object) -> None:
        values.append(value)
        conditions.append(template.format(f"${len(values) + 2}"))

    if match.since is not None:
        condition("at >= {}", match.since)
    if match.until is not None:
        condition("at < {}", match.until)
    if match.user_id is not None:
        condition("target_user_id = {}", match.user_id)
    if match.email is not None:
        condition("target_email = {}", match.email)
    if match.actions is not None:
        condition("action = ANY({}::text[])", list(match.actions))
    if after is not None:
        condition("seq < {}" if newest_first else "seq > {}", after)
    order = "DESC" if newest_first else "ASC"
    return f"SELECT {_COLUMNS} FROM audit_entries WHERE {' AND '.join(conditions)} ORDER BY seq {order} LIMIT $2", values


async def page(conn: asyncpg.Connection, account_id: str, match: EntryFilter, newest_first: bool, after: int | None,
               limit: int) -> list[asyncpg.Record]:
    statement, values = page_sql(match, newest_first, after)
    return await conn.fetch(statement, account_id, limit, *values)


@dataclass(frozen=True)
class Chain:
    """Where the account's chain starts (its retention checkpoint) and ends (its head): (seq, hash),
    seq 0 and 32 zero bytes when none."""

    checkpoint: tuple[int, bytes]
    head: tuple[int, bytes]



async def account_chain(conn: asyncpg.Connection, account_id: str) -> Chain | None:
    """None for an unknown account."""
    row = await conn.fetchrow(
        "SELECT c.seq AS checkpoint_seq, c.hash AS checkpoint_hash, h.seq AS head_seq, h.hash AS head_hash FROM accounts a"
        " LEFT JOIN audit_checkpoints c USING (account_id) LEFT JOIN audit_heads h USING (account_id) WHERE a.account_id = $1",
        account_id,
    )
    if row is None:
        return None
    return Chain((row["checkpoint_seq"] or 0, bytes(row["checkpoint_hash"] or GENESIS)),
                 (row["head_seq"] or 0, bytes(row["head_hash"] or GENESIS)))
