"""The SQL of the invitation-mailing service."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import InvitationKind

# The token of this attempt joins the invitation's valid tokens; `token_hash` names the attempt
# that holds the claim. The expiry is set by the first attempt: a repeated one keeps it.
CLAIM = """
WITH claimed AS (
    UPDATE invitations i SET status = 'sending', token_hash = $2,
           expires_at = COALESCE(i.expires_at,
               now() + make_interval(secs => CASE i.kind WHEN 'welcome' THEN $3::float8 ELSE $4::float8 END)),
           claimed_until = now() + make_interval(secs => $5::float8)
    FROM memberships m
    WHERE i.invitation_id = $1 AND (i.status = 'issued' OR (i.status = 'sending' AND i.claimed_until < now()))
      AND m.membership_id = i.membership_id AND m.status IN ('invited', 'transfer_pending')
    RETURNING i.invitation_id, i.kind, i.expires_at, i.sent_count, i.from_account_id, m.account_id, m.profile_id,
              m.first_name, m.last_name, m.language
), minted AS (
    INSERT INTO invitation_tokens (token_hash, invitation_id) SELECT $2, invitation_id FROM claimed
)
SELECT * FROM claimed
"""


@dataclass(frozen=True)
class ClaimedInvitation:
    invitation_id: UUID
    kind: InvitationKind
    expires_at: datetime
    sent_count: int
    from_account_id: str | None
    account_id: str
    profile_id: UUID
    first_name: str
    last_name: str
    language: str


@dataclass(frozen=True)
class RenderingContext:
    account_name: str
    from_account_name: str | None
    email: str
    subject: str | None  # the account's welcome template for the language, when it has one
    body: str | None


async def claim_for_sending(
    conn: asyncpg.Connection, invitation_id: UUID, token_hash: bytes, welcome_ttl: int, transfer_ttl: int, lease: float
) -> ClaimedInvitation | None:
    """Stores a fresh token hash and expiry on an invitation that was not sent yet, and holds it
    for `lease` seconds; None when it was sent, revoked, held by another attempt, or its
    membership no longer waits for it."""
    row = await conn.fetchrow(CLAIM, invitation_id, token_hash, float(welcome_ttl), float(transfer_ttl), lease)
    return ClaimedInvitation(**row) if row else None


async def claim_wait_seconds(conn: asyncpg.Connection, invitation_id: UUID) -> float:
    """How long another attempt still holds the invitation (0 when none does)."""
    remaining = await conn.fetchval(
        "SELECT extract(epoch FROM claimed_until - now()) FROM invitations"
        " WHERE invitation_id = $1 AND status = 'sending'",
        invitation_id,
    )
    return max(0.0, float(remaining or 0))


async def rendering_context(conn: asyncpg.Connection, invitation: ClaimedInvitation) -> RenderingContext:
    row = await conn.fetchrow(
        "SELECT a.name AS account_name, f.name AS from_account_name, p.email, t.subject, t.body"
        " FROM accounts a JOIN profiles p ON p.profile_id = $3"
        " LEFT JOIN accounts f ON f.account_id = $2"
        " LEFT JOIN welcome_templates t ON t.account_id = a.account_id AND t.language = $4"
        " WHERE a.account_id = $1",
        invitation.account_id,
        invitation.from_account_id,
        invitation.profile_id,
        invitation.language,
    )
    return RenderingContext(**row)


async def mark_sent(conn: asyncpg.Connection, invitation_id: UUID, token_hash: bytes) -> int | None:
    """The new sent_count; None when the invitation changed meanwhile (revoked by a resend or a removal)."""
    return await conn.fetchval(
        "UPDATE invitations SET status = 'sent', sent_count = sent_count + 1, sent_at = now()"
        " WHERE invitation_id = $1 AND status = 'sending' AND token_hash = $2 RETURNING sent_count",
        invitation_id,
        token_hash,
    )


async def mark_failed(conn: asyncpg.Connection, invitation_id: UUID, token_hash: bytes, reason: str) -> bool:
    row = await conn.fetchval(
        "UPDATE invitations SET status = 'failed', failure_reason = $3"
        " WHERE invitation_id = $1 AND status = 'sending' AND token_hash = $2 RETURNING true",
        invitation_id,
        token_hash,
        reason,
    )
    return bool(row)


def expiry_text(expires_at: datetime) -> str:
    return expires_at.strftime("%Y-%m-%d %H:%M UTC")
