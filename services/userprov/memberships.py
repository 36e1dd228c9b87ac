"""Finding and locking memberships and accounts: shared by the services that change them
(the changes themselves are in userprov.lifecycle)."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from userprov import lifecycle
from userprov.runtime.errors import Rejected


@dataclass(frozen=True)
class Membership:
    membership_id: UUID
    account_id: str
    profile_id: UUID
    role: str | None
    status: str
    language: str


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    status: str
    groups: list[str]
    settings_templates: list[str]
    invitation_quota_per_day: int | None = None  # userprov.invitation_quota


ACCOUNT_COLUMNS = "account_id, name, status, groups, settings_templates, invitation_quota_per_day"


def home_account_sql(profile_id: str, account_id: str) -> str:
    """SQL of the account other than `account_id` where the person `profile_id` is active (NULL:
    none), the expressions given as SQL: what the welcome-or-transfer decision reads
    (lifecycle.invitation_kind)."""
    return (f"(SELECT o.account_id FROM memberships o WHERE o.profile_id = {profile_id} AND o.account_id <> {account_id}"
            " AND o.status = 'active' ORDER BY o.status_changed_at DESC LIMIT 1)")


MEMBERSHIP_COLUMNS = "membership_id, account_id, profile_id, role, status, language"


async def home_membership(conn: asyncpg.Connection, profile_id: UUID, other_than_account: str) -> Membership | None:
    """Where the person is active, other than the given account (locked)."""
    row = await conn.fetchrow(
        f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships"
        " WHERE profile_id = $1 AND account_id <> $2 AND status = 'active' FOR UPDATE",
        profile_id,
        other_than_account,
    )
    return Membership(**row) if row else None


async def lock_current_membership(conn: asyncpg.Connection, account_id: str, email: str) -> Membership:
    """The person's profile, then their current membership in the account, both locked (the
    lock order every membership change follows); `unknown_user` when there is none."""
    profile = await conn.fetchrow(
        "SELECT profile_id, email FROM profiles WHERE email = $1 FOR UPDATE", email
    )
    membership = None
    if profile is not None:
        membership = await conn.fetchrow(
            f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships"
            " WHERE account_id = $1 AND profile_id = $2 AND status <> 'removed' FOR UPDATE",
            account_id,
            profile["profile_id"],
        )
    if membership is None:
        raise Rejected("unknown_user", f"No current member with that email in account {account_id!r}.")
    return Membership(**membership)


async def lock_account(conn: asyncpg.Connection, account_id: str) -> Account | None:
    """Serialises the commands that change one account's members or seats."""
    row = await conn.fetchrow(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1 FOR NO KEY UPDATE",
        account_id,
    )
    return Account(**row) if row else None


async def is_last_active_admin(conn: asyncpg.Connection, membership: Membership) -> bool:
    """Whether this membership leaving would leave its account without an active admin. The
    caller holds the account's lock, so no concurrent removal or departure can change the answer."""
    if membership.role != "admin":
        return False
    others = await conn.fetchval(
        "SELECT count(*) FROM memberships WHERE account_id = $1 AND role = 'admin' AND status = 'active'"
        " AND membership_id <> $2",
        membership.account_id,
        membership.membership_id,
    )
    return lifecycle.leaves_no_admin(membership.role, membership.status, others)
