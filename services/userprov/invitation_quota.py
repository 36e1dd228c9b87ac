"""The per-account invitation quota (accounts.upsert's `invitation_quota_per_day`): what is left
of it in the rolling 24 hours.

An invitation counts from its decision, not its email: the account's invitations created in the
last 24 hours (welcome, transfer, resent, reissued, whatever became of them), and the members
still waiting for their decision (`pending`: added, or reactivated to be invited anew), each of
whom becomes one such invitation. Counting the waiting members reserves their invitations at
`users.add` time, so racing commands cannot together pass the quota: each counts while holding
the account's lock, in a statement begun after taking it (its snapshot sees every command that
held the lock before), and both counts are read in that one snapshot (a decision turns a pending
member into an invitation in one commit: it is counted once, before or after)."""
from __future__ import annotations

import asyncpg

from contracts.events import RejectionReason

WINDOW = "interval '24 hours'"

_LEFT = f"""
SELECT a.invitation_quota_per_day
       - (SELECT count(*) FROM invitations i WHERE i.account_id = a.account_id AND i.created_at > now() - {WINDOW})
       - (SELECT count(*) FROM memberships m WHERE m.account_id = a.account_id AND m.status = 'pending')
FROM accounts a WHERE a.account_id = $1 AND a.invitation_quota_per_day IS NOT NULL
"""

EXCEEDED: RejectionReason = "invitation_quota_exceeded"


async def invitations_left(conn: asyncpg.Connection, account_id: str) -> int | None:
    """Invitations the account's quota still allows now (0 when it is spent or was lowered below
    what is used); None when the account has no quota (or does not exist). To hold under
    concurrency, call it holding the account's lock, after the statement that took it."""
    left = await conn.fetchval(_LEFT, account_id)
    return None if left is None else max(0, int(left))


async def exceeded(conn: asyncpg.Connection, account_id: str) -> bool:
    """Whether the account uses more invitations than its quota allows, counting those this
    transaction has reserved (a change that reserved one checks it after, and is rolled back)."""
    left = await conn.fetchval(_LEFT, account_id)
    return left is not None and left < 0
