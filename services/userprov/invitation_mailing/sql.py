"""The SQL of the invitation-mailing service: invitations are claimed in turn order across
accounts (userprov.turns), a few at a time, and each email's outcome is recorded as soon as it
is known."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from contracts.base import InvitationKind
from userprov.audit import writing
from userprov.audit.writing import Entry
from userprov.runtime import outbox
from userprov.runtime.origin import Origin
from userprov.runtime.outbox import Committed, OutgoingMessage

# One statement, so one implicit transaction: the claim and the token hashes it stores commit
# before any email leaves, and every link sent works. Each claim's token joins the invitation's
# valid tokens; `token_hash` names the claim that holds it. The expiry is set by the first claim.
# `attempts` counts tries, for the backoff; a claim whose holder died counts as a lapse
# (userprov.invitation_mailing.sql.end_lapsed_claims), which bounds an email that kills its worker.
# SKIP LOCKED: processes claim side by side without waiting on each other. The lease runs from the
# claim itself (clock_timestamp()), not from its transaction's start (now()): a claim made in a
# `users.add` transaction that waited seconds for the account's lock still holds a whole lease.
_CLAIM = """
WITH due AS (
    SELECT i.invitation_id, row_number() OVER () AS n
    FROM (SELECT invitation_id FROM invitations
          WHERE status = 'issued' AND (not_before IS NULL OR not_before <= now()) {which}
          LIMIT $2 FOR UPDATE SKIP LOCKED) i
), hashes AS (
    SELECT * FROM unnest($1::bytea[]) WITH ORDINALITY AS h(token_hash, n)
), claimed AS (
    UPDATE invitations i SET status = 'sending', token_hash = hashes.token_hash, attempts = i.attempts + 1,
           expires_at = COALESCE(i.expires_at,
               now() + make_interval(secs => CASE i.kind WHEN 'welcome' THEN $3::float8 ELSE $4::float8 END)),
           claimed_until = clock_timestamp() + make_interval(secs => $5::float8)
    FROM due JOIN hashes USING (n)
    WHERE i.invitation_id = due.invitation_id
    RETURNING i.invitation_id, i.token_hash, i.kind, i.expires_at, i.sent_count, i.attempts, i.from_account_id,
              i.account_id, i.membership_id, i.correlation_id, i.traceparent, i.tracestate,
              extract(epoch FROM now() - i.first_tried_at)::float8 AS retried_for
), minted AS (
    INSERT INTO invitation_tokens (token_hash, invitation_id) SELECT token_hash, invitation_id FROM claimed
)
SELECT c.*, m.profile_id, m.first_name, m.last_name, m.language, a.name AS account_name, f.name AS from_account_name,
       p.email, t.subject AS template_subject, t.body AS template_body, cp.command_id AS progress_of
FROM claimed c
JOIN memberships m ON m.membership_id = c.membership_id
LEFT JOIN command_progress cp ON cp.command_id = m.added_by_command AND NOT cp.done
JOIN accounts a ON a.account_id = c.account_id
JOIN profiles p ON p.profile_id = m.profile_id
LEFT JOIN accounts f ON f.account_id = c.from_account_id
LEFT JOIN welcome_templates t ON c.kind = 'welcome' AND t.account_id = c.account_id AND t.language = m.language
"""
CLAIM = _CLAIM.format(which="ORDER BY turn")
CLAIM_THESE = _CLAIM.format(which="AND invitation_id = ANY($6::uuid[])")


@dataclass(frozen=True)
class ClaimedInvitation:
    invitation_id: UUID
    token_hash: bytes
    kind: InvitationKind
    expires_at: datetime
    sent_count: int
    attempts: int  # tries so far, this one included
    retried_for: float | None  # seconds since its first try that reached the server, at the claim; None before it
    from_account_id: str | None
    account_id: str
    profile_id: UUID
    first_name: str
    last_name: str
    language: str
    account_name: str
    from_account_name: str | None
    email: str
    template_subject: str | None  # the account's own welcome template for the language, if any
    template_body: str | None
    origin: Origin
    progress_of: str | None = None  # the large users.add that added the member, while its progress is published


async def claim(
    conn: asyncpg.Connection,
    token_hashes: Sequence[bytes],
    welcome_ttl: int,
    transfer_ttl: int,
    lease: float,
    these: Sequence[UUID] | None = None,
) -> list[ClaimedInvitation]:
    """Claims up to one invitation per token hash for `lease` seconds: the next in turn order, or
    those of `these` that wait to be sent."""
    ttls = (float(welcome_ttl), float(transfer_ttl), lease)
    if these is None:
        rows = await conn.fetch(CLAIM, list(token_hashes), len(token_hashes), *ttls)
    else:
        rows = await conn.fetch(CLAIM_THESE, list(token_hashes), len(token_hashes), *ttls, list(these))
    return [
        ClaimedInvitation(
            **{k: r[k] for k in ClaimedInvitation.__dataclass_fields__ if k != "origin"},
            origin=Origin(r["correlation_id"], r["traceparent"], r["tracestate"]),
        )
        for r in rows
    ]


async def still_open(conn: asyncpg.Connection, claims: dict[UUID, bytes]) -> set[UUID]:
    """Those of the claimed invitations (id: the claim's token hash) that this claim still holds
    and whose person still waits for them: not revoked by a removal or a resend meanwhile."""
    rows = await conn.fetch(
        "SELECT i.invitation_id FROM invitations i"
        " JOIN unnest($1::uuid[], $2::bytea[]) AS c(invitation_id, token_hash) USING (invitation_id)"
        " JOIN memberships m ON m.membership_id = i.membership_id"
        " WHERE i.status = 'sending' AND i.token_hash = c.token_hash AND m.status IN ('invited', 'transfer_pending')",
        list(claims),
        list(claims.values()),
    )
    return {r["invitation_id"] for r in rows}


Result = Literal["sent", "failed", "again", "untried"]

# Each invitation's new state, and its event and audit entry, commit together, in one statement,
# and only where the claim still held the invitation (a resend or a removal may have revoked it
# meanwhile: then neither changes).
_RECORD_CTES = """
WITH outcome AS (
    SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], $5::float8[])
        AS o(invitation_id, token_hash, result, reason, delay)
), changed AS (
    UPDATE invitations i SET
        status = CASE o.result WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'failed' ELSE 'issued' END,
        sent_count = i.sent_count + CASE o.result WHEN 'sent' THEN 1 ELSE 0 END,
        sent_at = CASE o.result WHEN 'sent' THEN now() ELSE i.sent_at END,
        failure_reason = CASE o.result WHEN 'failed' THEN o.reason ELSE i.failure_reason END,
        failed_at = CASE o.result WHEN 'failed' THEN now() ELSE i.failed_at END,
        first_tried_at = CASE WHEN o.result = 'untried' THEN i.first_tried_at ELSE COALESCE(i.first_tried_at, now()) END,
        token_hash = CASE WHEN o.result IN ('again', 'untried') THEN NULL ELSE i.token_hash END,
        not_before = CASE o.result WHEN 'again' THEN now() + make_interval(secs => o.delay) END,
        attempts = i.attempts - CASE o.result WHEN 'untried' THEN 1 ELSE 0 END,
        claimed_until = NULL
    FROM outcome o
    WHERE i.invitation_id = o.invitation_id AND i.status = 'sending' AND i.token_hash = o.token_hash
    RETURNING i.invitation_id AS key
)
"""
RECORD = _RECORD_CTES + outbox.insert_sql(6, keyed_by="changed")
RECORD_AUDITED = (f"{_RECORD_CTES}, written AS ({outbox.insert_sql(6, keyed_by='changed')}),"
                  f" {writing.append_sql(15, keyed_by='changed')}"
                  f" SELECT id, message_id FROM written UNION ALL SELECT NULL, NULL {writing.READ_AUDITED}")


@dataclass(frozen=True)
class Recorded:
    invitation_id: UUID
    token_hash: bytes
    result: Result
    reason: str | None = None  # why it failed
    delay: float = 0.0  # seconds before it is due again
    event: OutgoingMessage | None = None  # written only if the claim still held the invitation
    entry: Entry | None = None  # the audit entry, likewise


async def record(conn: asyncpg.Connection, outcomes: Sequence[Recorded]) -> list[Committed]:
    """Sent, failed, or back in the queue: due again after `delay` (the try counts) or at once,
    untried (it does not); returns the outbox rows written, to publish."""
    changes = [[o.invitation_id for o in outcomes], [o.token_hash for o in outcomes], [o.result for o in outcomes],
               [o.reason for o in outcomes], [o.delay for o in outcomes]]
    events = [o.event for o in outcomes if o.event is not None]
    event_keys = [o.invitation_id for o in outcomes if o.event is not None]
    audited = [o for o in outcomes if o.entry is not None]
    if not audited:
        return outbox.written(await conn.fetch(RECORD, *changes, *outbox.parameters(events), event_keys), events)
    entries = writing.parameters([o.entry for o in audited if o.entry is not None])
    rows = await conn.fetch(RECORD_AUDITED, *changes, *outbox.parameters(events), event_keys, *entries,
                            [o.invitation_id for o in audited])
    return outbox.written([r for r in rows if r["id"] is not None], events)


@dataclass(frozen=True)
class LapsedClaim:
    invitation_id: UUID
    account_id: str
    profile_id: UUID
    email: str
    origin: Origin


async def renew_claims(conn: asyncpg.Connection, claims: dict[UUID, bytes], lease: float) -> set[UUID]:
    """Extends the leases of the claims a living process holds (id: the claim's token hash), each
    from now; returns those renewed. A claim not among them is no longer this process's: its
    invitation was revoked or sent, or its lease lapsed and another claim may hold it."""
    rows = await conn.fetch(
        "UPDATE invitations i SET claimed_until = clock_timestamp() + make_interval(secs => $3::float8)"
        " FROM unnest($1::uuid[], $2::bytea[]) AS c(invitation_id, token_hash)"
        " WHERE i.invitation_id = c.invitation_id AND i.token_hash = c.token_hash AND i.status = 'sending'"
        " RETURNING i.invitation_id",
        list(claims),
        list(claims.values()),
        lease,
    )
    return {r["invitation_id"] for r in rows}


WORKER_STOPPED = "retries exhausted: the worker sending it stopped each time"


async def oldest_waiting(conn: asyncpg.Connection) -> float:
    """Seconds the longest-waiting of the next 1,000 due invitations in turn has waited for its
    email: since it was issued, or since its next try came due."""
    return float(await conn.fetchval(
        "SELECT COALESCE(extract(epoch FROM now() - min(GREATEST(created_at, not_before))), 0)::float8"
        " FROM (SELECT created_at, not_before FROM invitations"
        "       WHERE status = 'issued' AND (not_before IS NULL OR not_before <= now()) ORDER BY turn LIMIT 1000) next"))


async def end_lapsed_claims(conn: asyncpg.Connection, max_lapses: int) -> list[LapsedClaim]:
    """Claims whose lease ran out (their holder died or lost its database) go back in the queue;
    an invitation whose claims lapsed `max_lapses` times (an email that kills its worker) fails
    instead, and is returned."""
    await conn.execute(
        "UPDATE invitations SET status = 'issued', token_hash = NULL, claimed_until = NULL, lapses = lapses + 1"
        " WHERE status = 'sending' AND claimed_until < now() AND lapses + 1 < $1",
        max_lapses,
    )
    rows = await conn.fetch(
        "UPDATE invitations i SET status = 'failed', claimed_until = NULL, failure_reason = $2, failed_at = now(),"
        " lapses = i.lapses + 1"
        " FROM memberships m JOIN profiles p USING (profile_id)"
        " WHERE i.status = 'sending' AND i.claimed_until < now() AND i.lapses + 1 >= $1 AND m.membership_id = i.membership_id"
        " RETURNING i.invitation_id, i.account_id, m.profile_id, p.email, i.correlation_id, i.traceparent, i.tracestate",
        max_lapses,
        WORKER_STOPPED,
    )
    return [
        LapsedClaim(r["invitation_id"], r["account_id"], r["profile_id"], r["email"],
                    Origin(r["correlation_id"], r["traceparent"], r["tracestate"]))
        for r in rows
    ]


def expiry_text(expires_at: datetime) -> str:
    return expires_at.strftime("%Y-%m-%d %H:%M UTC")
