"""`audit.list`: an account's audit trail, for an admin of the account or a trusted platform service."""
from __future__ import annotations

import json

import asyncpg

from contracts.queries import AuditActor, AuditEntry, AuditList, AuditListReply, AuditTarget, ChainPoint
from userprov.account_lookup import audit_cursor, audit_sql
from userprov.permissions import actor_in, platform
from userprov.runtime.errors import Rejected


async def list_audit(query: AuditList, conn: asyncpg.Connection) -> AuditListReply:
    await _may_read(conn, query)
    after = audit_cursor.decode(query)
    chain = await audit_sql.account_chain(conn, query.account_id)
    if chain is None:
        raise Rejected("unknown_account", f"No account {query.account_id!r}.")
    match = audit_sql.EntryFilter(since=query.since, until=query.until, user_id=query.user_id, email=query.email,
                                  actions=tuple(query.actions) if query.actions is not None else None)
    rows = await audit_sql.page(conn, query.account_id, match, query.order == "newest_first", after, query.limit)
    return AuditListReply(
        account_id=query.account_id,
        entries=[_entry(row) for row in rows],
        next_cursor=audit_cursor.encode(query, rows[-1]["seq"]) if len(rows) == query.limit else None,
        checkpoint=ChainPoint(seq=chain.checkpoint[0], hash=chain.checkpoint[1].hex()),
        head=ChainPoint(seq=chain.head[0], hash=chain.head[1].hex()),
    )


async def _may_read(conn: asyncpg.Connection, query: AuditList) -> None:
    """Checked before anything about the account is read, so that a stranger learns nothing of it."""
    if query.requested_by is None:
        platform()
    elif await actor_in(conn, query.account_id, query.requested_by) != "admin":
        raise Rejected("forbidden", "Only an active admin of the account, or a trusted platform service, may read its"
                                    " audit trail.")


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"], at=row["at"], action=row["action"],
        actor=AuditActor(kind=row["actor_kind"], id=row["actor_id"]),
        target=AuditTarget(user_id=row["target_user_id"], email=row["target_email"]),
        changes=json.loads(row["changes"]), via=row["via"], message_id=row["message_id"], correlation_id=row["correlation_id"],
        hash=bytes(row["hash"]).hex(),
    )
