"""Audit entries written straight into PostgreSQL, chained with userprov.audit.chain as the
workers chain theirs: for the tests of the read side (audit.list, export, verify) that need many
entries, or entries they then tamper with by hand."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from contracts import routing
from userprov.audit.chain import link
from userprov_devtools.bus_client import BusClient

ACTIONS = ("user.added", "invitation.sent", "user.updated", "user.deactivated", "user.reactivated", "user.removed")
START = datetime(2026, 1, 1, tzinfo=UTC)


def person(n: int, account_id: str) -> tuple[uuid.UUID, str]:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{n}"), f"person{n}.{account_id}@example.com"


def made_up(account_id: str, seq: int, people: int = 7, start: datetime = START, step: timedelta = timedelta(minutes=1)) -> dict[str, Any]:
    """Entry `seq` of a made-up story: one each `step` from `start`, the actions in turn, about one
    of `people` people, each change a different one."""
    user_id, email = person(seq % people, account_id)
    return {
        "account_id": account_id, "seq": seq, "at": start + step * seq, "action": ACTIONS[seq % len(ACTIONS)],
        "actor": {"kind": "user", "id": f"admin.{account_id}@example.com"}, "target": {"user_id": user_id, "email": email},
        "changes": {"n": seq, "note": "ü"}, "via": "bus", "message_id": f"m-{seq}", "correlation_id": f"c-{seq}",
    }


async def append(db: asyncpg.Pool, account_id: str, count: int, people: int = 7, start: datetime = START,
                 step: timedelta = timedelta(minutes=1)) -> list[dict[str, Any]]:
    """Appends `count` made-up entries to the account's chain (after whatever it holds) and moves
    its head; returns them, each with its hash."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO audit_heads (account_id) VALUES ($1) ON CONFLICT DO NOTHING", account_id)
        head = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE account_id = $1 FOR UPDATE", account_id)
        previous, entries = bytes(head["hash"]), []
        for seq in range(head["seq"] + 1, head["seq"] + count + 1):
            entry = made_up(account_id, seq, people, start, step)
            previous = entry["hash"] = link(previous, entry)
            entries.append(entry)
        await conn.copy_records_to_table("audit_entries", columns=COLUMNS, records=[_record(e) for e in entries])
        await conn.execute("UPDATE audit_heads SET seq = $2, hash = $3 WHERE account_id = $1", account_id, entries[-1]["seq"], previous)
    return entries


COLUMNS = ("account_id", "seq", "at", "action", "actor_kind", "actor_id", "target_user_id", "target_email", "changes", "via",
           "message_id", "correlation_id", "hash")


def _record(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry["account_id"], entry["seq"], entry["at"], entry["action"], entry["actor"]["kind"], entry["actor"]["id"],
            entry["target"]["user_id"], entry["target"]["email"], json.dumps(entry["changes"]), entry["via"], entry["message_id"],
            entry["correlation_id"], entry["hash"])


async def pages(bus: BusClient, query: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every entry through next_cursor, and the answers."""
    entries, answers, cursor = [], [], None
    while True:
        answer = await bus.query(routing.AUDIT_LIST, {**query, **({"cursor": cursor} if cursor else {})})
        assert "entries" in answer, answer
        entries += answer["entries"]
        answers.append(answer)
        cursor = answer["next_cursor"]
        if cursor is None:
            return entries, answers


async def base(db: asyncpg.Pool, account_id: str) -> int:
    """The seq of the account's last entry before the test wrote any (what the workers wrote)."""
    return await db.fetchval("SELECT COALESCE(max(seq), 0) FROM audit_entries WHERE account_id = $1", account_id)
