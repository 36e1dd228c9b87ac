"""The SQL of the invitation-response service."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import InvitationKind


@dataclass(frozen=True)
class TokenOwner:
    invitation_id: UUID
    token_hash: bytes
    profile_id: UUID


@dataclass(frozen=True)
class AnsweredInvitation:
    """An invitation being accepted or declined, with its membership, both locked."""

    invitation_id: UUID
    kind: InvitationKind
    status: str
    expires_at: datetime | None
    membership_id: UUID
    account_id: str
    profile_id: UUID
    membership_status: str


async def find_by_token_hash(conn: asyncpg.Connection, token_hash: bytes) -> TokenOwner | None:
    row = await conn.fetchrow(
        "SELECT t.invitation_id, t.token_hash, m.profile_id FROM invitation_tokens t"
        " JOIN invitations i USING (invitation_id) JOIN memberships m USING (membership_id)"
        " WHERE t.token_hash = $1",
        token_hash,
    )
    return TokenOwner(**row) if row else None


async def lock_profile(conn: asyncpg.Connection, profile_id: UUID) -> str:
    """Every change of a person's memberships locks their profile first: one lock order, and
    two transfers of one person cannot both see the same home account."""
    return await conn.fetchval("SELECT email FROM profiles WHERE profile_id = $1 FOR UPDATE", profile_id)


async def lock_invitation(conn: asyncpg.Connection, invitation_id: UUID) -> AnsweredInvitation:
    row = await conn.fetchrow(
        "SELECT i.invitation_id, i.kind, i.status, i.expires_at, m.membership_id, m.account_id,"
        " m.profile_id, m.status AS membership_status"
        " FROM invitations i JOIN memberships m USING (membership_id)"
        " WHERE i.invitation_id = $1 FOR UPDATE OF m, i",
        invitation_id,
    )
    return AnsweredInvitation(**row)


async def move_assets(conn: asyncpg.Connection, profile_id: UUID, from_account: str, to_account: str) -> dict[str, int]:
    """Moves the person's assets; one the new account already holds under the same (kind, ref)
    is merged into it. Returns the count per kind."""
    rows = await conn.fetch(
        "WITH merged AS ("
        "  DELETE FROM assets a WHERE a.profile_id = $1 AND a.account_id = $2 AND EXISTS"
        "  (SELECT 1 FROM assets t WHERE t.account_id = $3 AND t.kind = a.kind AND t.ref = a.ref) RETURNING a.kind)"
        " SELECT kind FROM merged",
        profile_id,
        from_account,
        to_account,
    )
    rows += await conn.fetch(
        "UPDATE assets SET account_id = $3 WHERE profile_id = $1 AND account_id = $2 RETURNING kind",
        profile_id,
        from_account,
        to_account,
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return counts
