"""The SQL of the account-lookup service."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import AccountStatus, InvitationKind, MembershipStatus, Role
from userprov.memberships import home_account_sql
from userprov.runtime.origin import Origin

# SKIP LOCKED: processes take batches side by side; never waiting on a row lock, they cannot deadlock.
_TAKE = f"""
SELECT m.membership_id, m.profile_id, m.account_id, m.correlation_id, m.traceparent, m.tracestate,
       {home_account_sql("m.profile_id", "m.account_id")} AS home_account_id
FROM memberships m
WHERE m.status = 'pending' AND {{which}}
FOR UPDATE OF m SKIP LOCKED
"""
TAKE_WAITING = _TAKE.format(which="m.membership_id <> ALL($2::uuid[]) ORDER BY m.turn LIMIT $1")
TAKE_THESE = _TAKE.format(which="m.membership_id = ANY($1::uuid[])")

# The longest-waiting of the next 1,000 in turn: every account with work waiting has its oldest
# among them, unless more than 1,000 accounts wait.
OLDEST_WAITING = """
SELECT COALESCE(extract(epoch FROM now() - min(status_changed_at)), 0)::float8
FROM (SELECT status_changed_at FROM memberships WHERE status = 'pending' ORDER BY turn LIMIT 1000) next
"""


# The people whose latest invitation failed and who still wait for one; a resend since then
# (open, or failed again) is the latest instead. Oldest failure first, paged on (failed_at, id).
_FAILED = """
SELECT i.invitation_id, i.account_id, m.profile_id AS user_id, p.email, i.kind, i.failure_reason AS reason, i.failed_at,
       i.membership_id, i.from_account_id, i.sent_count, m.role
FROM invitations i
JOIN memberships m USING (membership_id)
JOIN profiles p ON p.profile_id = m.profile_id
WHERE i.status = 'failed' AND m.status IN ('invited', 'transfer_pending') AND ($1::text IS NULL OR i.account_id = $1)
  AND NOT EXISTS (SELECT 1 FROM invitations later WHERE later.membership_id = i.membership_id AND later.created_at > i.created_at)
  {which}
"""
FAILED_PAGE = _FAILED.format(
    which="AND ($2::uuid IS NULL OR (i.failed_at, i.invitation_id) >"
    " (SELECT f.failed_at, f.invitation_id FROM invitations f WHERE f.invitation_id = $2))"
    " ORDER BY i.failed_at, i.invitation_id LIMIT $3"
)
FAILED_TO_RETRY = _FAILED.format(which="ORDER BY i.failed_at, i.invitation_id FOR UPDATE OF m")


@dataclass(frozen=True)
class FailedInvitation:
    invitation_id: UUID
    account_id: str
    user_id: UUID
    email: str
    kind: InvitationKind
    reason: str
    failed_at: datetime
    membership_id: UUID
    from_account_id: str | None
    sent_count: int
    role: Role | None


@dataclass(frozen=True)
class PendingMembership:
    membership_id: UUID
    profile_id: UUID
    account_id: str
    home_account_id: str | None  # where the person is active now, if anywhere else
    origin: Origin


@dataclass(frozen=True)
class LatestInvitation:
    invitation_id: UUID
    kind: InvitationKind
    sent_count: int
    from_account_id: str | None
    age_seconds: float
    delivered: bool  # an SMTP server accepted its email


@dataclass(frozen=True)
class UserView:
    membership_id: UUID
    profile_id: UUID
    email: str
    first_name: str
    last_name: str
    status: MembershipStatus
    role: Role | None
    language: str
    user_group: str | None
    settings_template: str | None
    external_id: str | None
    products: list[str]
    invitation_kind: InvitationKind | None
    invitation_status: str | None
    expires_at: datetime | None
    sent_count: int | None


@dataclass(frozen=True)
class AccountView:
    account_id: str
    name: str
    status: AccountStatus
    licences: dict[str, tuple[int, int]]  # product: (total, used)
    members: dict[str, int]  # by status
    scim_defaults: str | None  # JSON of ScimDefaults
    invitation_quota_per_day: int | None


async def take_waiting(conn: asyncpg.Connection, limit: int, skip: Sequence[UUID] = ()) -> list[PendingMembership]:
    """Up to `limit` memberships waiting for the decision, in turn order, locked for this
    transaction (those another transaction holds are left to it), each with the account the
    person is active in elsewhere."""
    return _pending(await conn.fetch(TAKE_WAITING, limit, list(skip)))


async def oldest_waiting(conn: asyncpg.Connection) -> float:
    """Seconds the longest-waiting membership due next has waited for its decision (since it
    became pending)."""
    return float(await conn.fetchval(OLDEST_WAITING))


async def take_these(conn: asyncpg.Connection, membership_ids: Sequence[UUID]) -> list[PendingMembership]:
    """Those of the memberships that still wait for the decision, locked for this transaction
    (those another transaction holds are left to it)."""
    return _pending(await conn.fetch(TAKE_THESE, list(membership_ids)))


def _pending(rows: Sequence[asyncpg.Record]) -> list[PendingMembership]:
    return [
        PendingMembership(
            r["membership_id"], r["profile_id"], r["account_id"], r["home_account_id"],
            Origin(r["correlation_id"], r["traceparent"], r["tracestate"]),
        )
        for r in rows
    ]


async def account_view(conn: asyncpg.Connection, account_id: str) -> AccountView | None:
    account = await conn.fetchrow(
        "SELECT account_id, name, status, scim_defaults::text, invitation_quota_per_day FROM accounts WHERE account_id = $1",
        account_id)
    if account is None:
        return None
    licences = await conn.fetch(
        "SELECT product, seats_total, seats_used FROM account_licences WHERE account_id = $1 ORDER BY product", account_id
    )
    members = await conn.fetch(
        "SELECT status, count(*) AS n FROM memberships WHERE account_id = $1 GROUP BY status ORDER BY status", account_id
    )
    return AccountView(
        account_id=account["account_id"],
        name=account["name"],
        status=account["status"],
        licences={r["product"]: (r["seats_total"], r["seats_used"]) for r in licences},
        members={r["status"]: r["n"] for r in members},
        scim_defaults=account["scim_defaults"],
        invitation_quota_per_day=account["invitation_quota_per_day"],
    )


async def user_view(conn: asyncpg.Connection, account_id: str, email: str) -> UserView | None:
    """The current membership (else the latest removed one) with its products and latest invitation."""
    row = await conn.fetchrow(
        "SELECT m.membership_id, p.profile_id, p.email, m.first_name, m.last_name, m.status, m.role, m.language,"
        " m.user_group, m.settings_template, m.external_id,"
        " ARRAY(SELECT s.product FROM seat_assignments s WHERE s.membership_id = m.membership_id ORDER BY s.product) AS products,"
        " i.kind AS invitation_kind, i.status AS invitation_status, i.expires_at, i.sent_count"
        " FROM memberships m JOIN profiles p USING (profile_id)"
        " LEFT JOIN LATERAL (SELECT * FROM invitations WHERE membership_id = m.membership_id"
        "   ORDER BY created_at DESC LIMIT 1) i ON true"
        " WHERE m.account_id = $1 AND p.email = $2"
        " ORDER BY (m.status = 'removed'), m.created_at DESC LIMIT 1",
        account_id,
        email,
    )
    return UserView(**row) if row else None


def _listed(external_id: str, user_id: str, active: str) -> str:
    """FROM and WHERE of users.list: $1 account, $2 email, $3 status, and the placeholders of the
    external id, the user id and `active`."""
    return ("FROM memberships m JOIN profiles p USING (profile_id) WHERE m.account_id = $1 AND m.status <> 'removed'"
            " AND ($2::text IS NULL OR p.email = $2) AND ($3::text IS NULL OR m.status = $3)"
            f" AND ({external_id}::text IS NULL OR m.external_id = {external_id}) AND ({user_id}::uuid IS NULL OR m.profile_id = {user_id})"
            f" AND ({active}::bool IS NULL OR (m.status <> 'deactivated') = {active})")



LIST_USERS = (
    "SELECT p.profile_id AS user_id, p.email, m.first_name, m.last_name, m.status, m.role, m.language, m.user_group AS \"group\","
    " m.settings_template, m.external_id, m.created_at AS added_at, m.status_changed_at,"
    " ARRAY(SELECT s.product FROM seat_assignments s WHERE s.membership_id = m.membership_id ORDER BY s.product) AS products"
    f" {_listed('$6', '$7', '$8')} ORDER BY m.created_at, m.membership_id OFFSET $4 LIMIT $5"
)
COUNT_USERS = f"SELECT count(*) {_listed('$4', '$5', '$6')}"


@dataclass(frozen=True)
class UsersFilter:
    email: str | None = None
    status: str | None = None
    external_id: str | None = None
    user_id: UUID | None = None
    active: bool | None = None


async def list_users(conn: asyncpg.Connection, account_id: str, match: UsersFilter, offset: int,
                     limit: int) -> tuple[int, list[asyncpg.Record]]:
    """(members matching, the page of them): both read in the query's one snapshot."""
    total = await conn.fetchval(COUNT_USERS, account_id, match.email, match.status, match.external_id, match.user_id, match.active)
    rows = await conn.fetch(LIST_USERS, account_id, match.email, match.status, offset, limit, match.external_id,
                            match.user_id, match.active) if limit and offset < total else []
    return total, rows


async def latest_invitation(conn: asyncpg.Connection, membership_id: UUID) -> LatestInvitation | None:
    row = await conn.fetchrow(
        "SELECT invitation_id, kind, sent_count, from_account_id,"
        " extract(epoch FROM now() - created_at)::float8 AS age_seconds, sent_at IS NOT NULL AS delivered"
        " FROM invitations WHERE membership_id = $1 ORDER BY created_at DESC LIMIT 1",
        membership_id,
    )
    return LatestInvitation(**row) if row else None


async def record_asset(conn: asyncpg.Connection, account_id: str, kind: str, ref: str, profile_id: UUID) -> bool:
    """True when the asset is new; an asset recorded before (the same account, kind and ref) is kept as it was."""
    return bool(
        await conn.fetchval(
            "INSERT INTO assets (account_id, kind, ref, profile_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (account_id, kind, ref) DO NOTHING RETURNING true",
            account_id,
            kind,
            ref,
            profile_id,
        )
    )


async def account_exists(conn: asyncpg.Connection, account_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM accounts WHERE account_id = $1", account_id))


async def failed_invitations(
    conn: asyncpg.Connection, account_id: str | None, after: UUID | None, limit: int
) -> list[FailedInvitation]:
    return [FailedInvitation(**r) for r in await conn.fetch(FAILED_PAGE, account_id, after, limit)]


async def lock_failed_invitations(conn: asyncpg.Connection, account_id: str | None) -> list[FailedInvitation]:
    """All of them, their memberships locked for this transaction (a resend or removal waits)."""
    return [FailedInvitation(**r) for r in await conn.fetch(FAILED_TO_RETRY, account_id)]


@dataclass(frozen=True)
class PeekedInvitation:
    token_hash: bytes
    kind: InvitationKind
    status: str
    expires_at: datetime | None
    moved: str | None  # JSON: what an accepted transfer moved
    account_name: str
    language: str
    member_status: MembershipStatus
    email: str
    first_name: str
    from_name: str | None  # the account the invitation was decided to move the person from
    home_name: str | None  # the account the person is active in now, other than the inviting one
    home_assets: str | None  # JSON: their assets there, per kind


async def peek(conn: asyncpg.Connection, token_hash: bytes) -> PeekedInvitation | None:
    """The invitation behind a token, as its page shows it; reads only."""
    row = await conn.fetchrow(
        "SELECT t.token_hash, i.kind, i.status, i.expires_at, i.moved::text AS moved, a.name AS account_name, m.language,"
        " m.status AS member_status, p.email, m.first_name, f.name AS from_name, home.name AS home_name,"
        " (SELECT jsonb_object_agg(c.kind, c.n) FROM (SELECT s.kind, count(*) AS n FROM assets s"
        "   WHERE s.profile_id = m.profile_id AND s.account_id = home.account_id GROUP BY s.kind) c)::text AS home_assets"
        " FROM invitation_tokens t"
        " JOIN invitations i USING (invitation_id)"
        " JOIN memberships m USING (membership_id)"
        " JOIN accounts a ON a.account_id = m.account_id"
        " JOIN profiles p ON p.profile_id = m.profile_id"
        " LEFT JOIN accounts f ON f.account_id = i.from_account_id"
        " LEFT JOIN LATERAL (SELECT o.account_id, oa.name FROM memberships o JOIN accounts oa ON oa.account_id = o.account_id"
        "   WHERE o.profile_id = m.profile_id AND o.account_id <> m.account_id AND o.status = 'active'"
        "   ORDER BY o.status_changed_at DESC LIMIT 1) home ON true"
        " WHERE t.token_hash = $1",
        token_hash,
    )
    return PeekedInvitation(**row) if row else None


async def resolve_scim_token(conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    """The account and id of a token not revoked, by its hash (an index lookup: a hash of a
    random 256-bit token reveals nothing to time)."""
    return await conn.fetchrow(
        "SELECT account_id, token_id FROM scim_tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash)
