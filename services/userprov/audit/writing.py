"""Writing audit entries in the transaction of their change: the accounts' heads locked (in
account order, so that units touching several accounts never deadlock), each entry's seq, time
and hash computed here from the heads, then the entries and the new heads written by the
statement that closes the unit (with its inbox claim and outbox rows).

The heads stay locked from that read to the commit: concurrent writers of one account append one
after the other, and `at` never goes back as seq grows (it is read once the locks are held).
The chain is computed in Python: in SQL, a recursive CTE over 10,000 entries is quadratic."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from userprov.audit import chain
from userprov.audit.actors import Cause


@dataclass(frozen=True)
class Entry:
    """An entry before it is chained: what changed, for whom, and why."""

    account_id: str
    action: str
    cause: Cause
    user_id: UUID | None
    email: str | None
    changes: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None

    def chained(self, seq: int, at: datetime) -> dict[str, Any]:
        """The entry as `userprov.audit.chain` reads it."""
        return {
            "account_id": self.account_id, "seq": seq, "at": at, "action": self.action,
            "actor": {"kind": self.cause.actor.kind, "id": self.cause.actor.id},
            "target": {"user_id": self.user_id, "email": self.email}, "changes": self.changes,
            "via": self.cause.via, "message_id": self.message_id, "correlation_id": self.correlation_id,
        }


# Locks the heads, then reads the time: the subquery's rows are locked before the outer
# projection reads the clock (a clock read beside the lock could predate a wait for it).
LOCK_HEADS = (
    "SELECT account_id, seq, hash, clock_timestamp() AS now FROM"
    " (SELECT account_id, seq, hash FROM audit_heads WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE) h"
)
# An account's first entry makes its head (a statement of its own, so that the next sees a head
# another transaction made meanwhile: ON CONFLICT waits for that one to commit).
MAKE_HEADS = "INSERT INTO audit_heads (account_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"

COLUMNS = ("account_id, seq, at, action, actor_kind, actor_id, target_user_id, target_email, changes, via, message_id,"
           " correlation_id, hash")
_TYPES = ("text", "bigint", "timestamptz", "text", "text", "text", "uuid", "text", "text", "text", "text", "text", "bytea")
PARAMETERS = len(_TYPES) + 3


def append_sql(first_parameter: int) -> str:
    """Two CTEs, `audited` and `heads_moved`, that write chained entries and move their heads,
    from the PARAMETERS arrays of `Chained.parameters`, numbered from `first_parameter`."""
    p = [f"${first_parameter + n}::{t}[]" for n, t in enumerate(_TYPES)]
    h = [f"${first_parameter + len(_TYPES) + n}::{t}[]" for n, t in enumerate(("text", "bigint", "bytea"))]
    columns = COLUMNS.replace("changes", "changes_text")
    selected = COLUMNS.replace("changes", "changes_text::jsonb")
    return (
        f"audited AS (INSERT INTO audit_entries ({COLUMNS}) SELECT {selected}"
        f" FROM unnest({', '.join(p)}) AS e({columns})),"
        f" heads_moved AS (UPDATE audit_heads h SET seq = n.seq, hash = n.hash"
        f" FROM unnest({', '.join(h)}) AS n(account_id, seq, hash) WHERE h.account_id = n.account_id)"
    )


@dataclass(frozen=True)
class Chained:
    """Entries with their seq, time and hash, and their accounts' new heads."""

    rows: list[tuple[Entry, int, datetime, bytes]]
    heads: dict[str, tuple[int, bytes]]

    def parameters(self) -> list[list[Any]]:
        """The arrays `append_sql` takes, in its order."""
        rows = [
            (e.account_id, seq, at, e.action, e.cause.actor.kind, e.cause.actor.id, e.user_id, e.email,
             _JSON.encode(e.changes), e.cause.via, e.message_id, e.correlation_id, digest)
            for e, seq, at, digest in self.rows
        ]
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in _TYPES]
        heads: list[list[Any]] = [list(self.heads), [seq for seq, _ in self.heads.values()], [h for _, h in self.heads.values()]]
        return columns + heads


_JSON = json.JSONEncoder(ensure_ascii=False)


async def chained(conn: asyncpg.Connection, entries: Sequence[Entry]) -> Chained:
    """Locks the entries' accounts' heads (made when missing) and chains the entries after them,
    in the order given; all of them at one time, read once the locks are held."""
    accounts = sorted({e.account_id for e in entries})
    heads = await conn.fetch(LOCK_HEADS, accounts)
    if len(heads) < len(accounts):
        await conn.execute(MAKE_HEADS, accounts)
        heads = await conn.fetch(LOCK_HEADS, accounts)
    at = max(h["now"] for h in heads)
    current = {h["account_id"]: (h["seq"], bytes(h["hash"])) for h in heads}
    rows = []
    for entry in entries:
        seq, previous = current[entry.account_id]
        digest = chain.link(previous, entry.chained(seq + 1, at))
        current[entry.account_id] = (seq + 1, digest)
        rows.append((entry, seq + 1, at, digest))
    return Chained(rows, current)
