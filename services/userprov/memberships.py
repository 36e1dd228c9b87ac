"""Finding and locking memberships and accounts: shared by the services that change them
(the changes themselves are in userprov.lifecycle)."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from userprov import lifecycle
from userprov.runtime.errors import Rejected


async def home_membership(conn: asyncpg.Connection, profile_id: UUID, other_than_account: str) -> asyncpg.Record | None:
    """Where the person is active, other than the given account (locked)."""
    return await conn.fetchrow(
        "SELECT membership_id, account_id, role, status FROM memberships"
        " WHERE profile_id = $1 AND account_id <> $2 AND status = 'active' FOR UPDATE",
        profile_id,
        other_than_account,
    )


async def lock_current_membership(conn: asyncpg.Connection, account_id: str, email: str) -> asyncpg.Record:
    """The person's profile, then their current membership in the account, both locked (the
    lock order every membership change follows); `unknown_user` when there is none."""
    profile = await conn.fetchrow(
        "SELECT profile_id, email FROM profiles WHERE email = $1 FOR UPDATE", email
    )
    membership = None
    if profile is not None:
        membership = await conn.fetchrow(
            "SELECT membership_id, account_id, profile_id, role, status, language FROM memberships"
            " WHERE account_id = $1 AND profile_id = $2 AND status <> 'removed' FOR UPDATE",
            account_id,
            profile["profile_id"],
        )
    if membership is None:
        raise Rejected("unknown_user", f"No current member with that email in account {account_id!r}.")
    return membership


async def lock_account(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    """Serialises the commands that change one account's members or seats."""
    return await conn.fetchrow(
        "SELECT account_id, name, status, groups, settings_templates FROM accounts WHERE account_id = $1"
        " FOR NO KEY UPDATE",
        account_id,
    )


async def is_last_active_admin(conn: asyncpg.Connection, membership: asyncpg.Record) -> bool:
    """Whether this membership leaving would leave its account without an active admin. The
    caller holds the account's lock, so no concurrent removal or departure can change the answer."""
    if membership["role"] != "admin":
        return False
    others = await conn.fetchval(
        "SELECT count(*) FROM memberships WHERE account_id = $1 AND role = 'admin' AND status = 'active'"
        " AND membership_id <> $2",
        membership["account_id"],
        membership["membership_id"],
    )
    return lifecycle.leaves_no_admin(membership["role"], membership["status"], others)
