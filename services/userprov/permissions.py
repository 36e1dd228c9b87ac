"""Who may add, resend to or remove whom in an account."""
from __future__ import annotations

from typing import Literal

import asyncpg

from userprov.runtime.errors import Rejected
from userprov.runtime.publisher import trusted_publisher

Actor = Literal["platform", "admin", "manager", "nobody"]


def platform() -> Actor:
    """The actor of a command that names no acting user: a trusted platform service, or refused."""
    if not trusted_publisher.get():
        raise Rejected("forbidden", "Only a trusted platform service may act without requested_by: name the acting user, or"
                                    " publish as a RabbitMQ user in USERPROV_TRUSTED_PUBLISHERS with the user_id property set.")
    return "platform"


async def actor_in(conn: asyncpg.Connection, account_id: str, requested_by: str | None) -> Actor:
    """A trusted platform service when no one is named; else the named user's active role."""
    if requested_by is None:
        return platform()
    row = await conn.fetchrow(
        "SELECT m.role FROM memberships m JOIN profiles p USING (profile_id)"
        " WHERE m.account_id = $1 AND p.email = $2 AND m.status = 'active'",
        account_id,
        requested_by,
    )
    if row is None or row["role"] is None:
        return "nobody"
    return row["role"]


def may_manage(actor: Actor, target_role: str | None) -> bool:
    """Admins and platform services manage anyone; managers manage plain users only."""
    if actor in ("platform", "admin"):
        return True
    return actor == "manager" and target_role is None


async def acting(conn: asyncpg.Connection, account_id: str, requested_by: str | None) -> Actor:
    """The actor, refused at once when they may manage no one: checked before anything about
    the target is looked up, so a stranger learns nothing about who is a member."""
    actor = await actor_in(conn, account_id, requested_by)
    if actor == "nobody":
        raise Rejected("forbidden", "The acting user may not manage users in this account.")
    return actor


def permit(actor: Actor, target_role: str | None) -> None:
    if not may_manage(actor, target_role):
        target = f"a user with role {target_role}" if target_role else "users"
        raise Rejected("forbidden", f"The acting user may not manage {target} in this account.")


async def authorize(conn: asyncpg.Connection, account_id: str, requested_by: str | None, target_role: str | None) -> None:
    permit(await acting(conn, account_id, requested_by), target_role)
