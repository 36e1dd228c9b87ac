"""The SQL of the invitation-mailing service. Every statement takes a chunk of invitations."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import InvitationKind

# Each attempt's token joins the invitation's valid tokens; `token_hash` names the attempt that
# holds the claim. The expiry is set by the first attempt: a repeated one keeps it.
CLAIM = """
WITH attempt AS (
    SELECT * FROM unnest($1::uuid[], $2::bytea[]) AS a(invitation_id, token_hash)
), claimed AS (
    UPDATE invitations i SET status = 'sending', token_hash = a.token_hash,
           expires_at = COALESCE(i.expires_at,
               now() + make_interval(secs => CASE i.kind WHEN 'welcome' THEN $3::float8 ELSE $4::float8 END)),
           claimed_until = now() + make_interval(secs => $5::float8)
    FROM attempt a, memberships m
    WHERE i.invitation_id = a.invitation_id
      AND (i.status = 'issued' OR (i.status = 'sending' AND i.claimed_until < now()))
      AND m.membership_id = i.membership_id AND m.status IN ('invited', 'transfer_pending')
    RETURNING i.invitation_id, i.token_hash, i.kind, i.expires_at, i.sent_count, i.from_account_id, m.account_id,
              m.profile_id, m.first_name, m.last_name, m.language
), minted AS (
    INSERT INTO invitation_tokens (token_hash, invitation_id) SELECT token_hash, invitation_id FROM claimed
)
SELECT c.*, a.name AS account_name, f.name AS from_account_name, p.email
FROM claimed c
JOIN accounts a ON a.account_id = c.account_id
JOIN profiles p ON p.profile_id = c.profile_id
LEFT JOIN accounts f ON f.account_id = c.from_account_id
"""


@dataclass(frozen=True)
class ClaimedInvitation:
    invitation_id: UUID
    token_hash: bytes
    kind: InvitationKind
    expires_at: datetime
    sent_count: int
    from_account_id: str | None
    account_id: str
    profile_id: UUID
    first_name: str
    last_name: str
    language: str
    account_name: str
    from_account_name: str | None
    email: str


@dataclass(frozen=True)
class AccountTemplateSource:
    subject: str
    body: str


async def claim_for_sending(
    conn: asyncpg.Connection,
    attempts: dict[UUID, bytes],
    welcome_ttl: int,
    transfer_ttl: int,
    lease: float,
) -> list[ClaimedInvitation]:
    """Stores a fresh token hash (`attempts`: invitation id -> hash) and the expiry on each
    invitation that was not sent yet, and holds it for `lease` seconds. Leaves out those that
    were sent, revoked or are held by another attempt, and those whose membership no longer
    waits for them."""
    rows = await conn.fetch(
        CLAIM, list(attempts), list(attempts.values()), float(welcome_ttl), float(transfer_ttl), lease
    )
    return [ClaimedInvitation(**row) for row in rows]


async def account_templates(
    conn: asyncpg.Connection, invitations: Sequence[ClaimedInvitation]
) -> dict[tuple[str, str], AccountTemplateSource]:
    """The accounts' own welcome templates, by (account, language), for the claimed welcomes."""
    wanted = {(i.account_id, i.language) for i in invitations if i.kind == "welcome"}
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT t.account_id, t.language, t.subject, t.body FROM welcome_templates t"
        " JOIN unnest($1::text[], $2::text[]) AS w(account_id, language)"
        " ON t.account_id = w.account_id AND t.language = w.language",
        [account for account, _ in wanted],
        [language for _, language in wanted],
    )
    return {(r["account_id"], r["language"]): AccountTemplateSource(r["subject"], r["body"]) for r in rows}


async def held_seconds(conn: asyncpg.Connection, invitation_ids: Sequence[UUID]) -> float:
    """How long other attempts still hold any of these invitations (0 when none does). Run in
    the claiming transaction: a claim that lapses exactly at `now()` is held by the claim's
    rule (`claimed_until < now()` takes it) and so counts here as held for a moment more."""
    remaining = await conn.fetchval(
        "SELECT max(extract(epoch FROM claimed_until - now())) FROM invitations"
        " WHERE invitation_id = ANY($1::uuid[]) AND status = 'sending' AND claimed_until >= now()",
        list(invitation_ids),
    )
    return max(0.001, float(remaining)) if remaining is not None else 0.0


async def mark_sent(conn: asyncpg.Connection, attempts: dict[UUID, bytes]) -> dict[UUID, int]:
    """The new sent_count of each invitation this attempt still held; one that changed meanwhile
    (revoked by a resend or a removal) is left out."""
    rows = await conn.fetch(
        "UPDATE invitations i SET status = 'sent', sent_count = i.sent_count + 1, sent_at = now()"
        " FROM unnest($1::uuid[], $2::bytea[]) AS a(invitation_id, token_hash)"
        " WHERE i.invitation_id = a.invitation_id AND i.status = 'sending' AND i.token_hash = a.token_hash"
        " RETURNING i.invitation_id, i.sent_count",
        list(attempts),
        list(attempts.values()),
    )
    return {r["invitation_id"]: r["sent_count"] for r in rows}


async def mark_failed(conn: asyncpg.Connection, attempts: dict[UUID, tuple[bytes, str]]) -> set[UUID]:
    """Those this attempt still held, now failed with the reason given."""
    rows = await conn.fetch(
        "UPDATE invitations i SET status = 'failed', failure_reason = a.reason"
        " FROM unnest($1::uuid[], $2::bytea[], $3::text[]) AS a(invitation_id, token_hash, reason)"
        " WHERE i.invitation_id = a.invitation_id AND i.status = 'sending' AND i.token_hash = a.token_hash"
        " RETURNING i.invitation_id",
        list(attempts),
        [hash_ for hash_, _ in attempts.values()],
        [reason for _, reason in attempts.values()],
    )
    return {r["invitation_id"] for r in rows}


async def release(conn: asyncpg.Connection, attempts: dict[UUID, bytes]) -> None:
    """Gives back the claims this attempt did not get to the end of in time, for its next round."""
    await conn.execute(
        "UPDATE invitations i SET status = 'issued', claimed_until = NULL, token_hash = NULL"
        " FROM unnest($1::uuid[], $2::bytea[]) AS a(invitation_id, token_hash)"
        " WHERE i.invitation_id = a.invitation_id AND i.status = 'sending' AND i.token_hash = a.token_hash",
        list(attempts),
        list(attempts.values()),
    )


def expiry_text(expires_at: datetime) -> str:
    return expires_at.strftime("%Y-%m-%d %H:%M UTC")
