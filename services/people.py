"""Finding and locking a person and their membership in an account."""
from __future__ import annotations

import asyncpg

from services.runtime.errors import Rejected


async def lock_current_membership(conn: asyncpg.Connection, account_id: str, email: str) -> asyncpg.Record:
    """The person's profile, then their current membership in the account, both locked (the
    lock order every membership change follows); `unknown_user` when there is none."""
    profile = await conn.fetchrow(
        "SELECT profile_id, email FROM profiles WHERE email = $1 FOR UPDATE", email.strip().lower()
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
