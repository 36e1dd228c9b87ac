"""Ending a membership: shared by removal and by the old side of an accepted transfer."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from services import seats


async def end_membership(conn: asyncpg.Connection, membership_id: UUID) -> dict[str, int]:
    """Marks it removed, releases its seats and revokes its open invitations; returns the seats released."""
    released = await seats.release(conn, membership_id)
    await conn.execute(
        "UPDATE invitations SET status = 'revoked'"
        " WHERE membership_id = $1 AND status IN ('issued', 'sending', 'sent')",
        membership_id,
    )
    await conn.execute(
        "UPDATE memberships SET status = 'removed', status_changed_at = now() WHERE membership_id = $1", membership_id
    )
    return released
