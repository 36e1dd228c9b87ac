"""How far a `users.add` has come: counted from the members it created (`added_by_command`) and
their invitations when asked, so that nothing is counted on the hot path. Every count only
grows: invitations are never deleted, and `sent_at` and `failed_at` are never cleared."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.queries import AddProgress

# per member of the command: whether it has an invitation, whether one reached them, whether one
# failed, and whether it left (removed, or deactivated: added so, or before an email reached them),
# which settles it as much as an email does: no email is coming
_COUNTS = """
SELECT count(*) FILTER (WHERE invited) AS invited, count(*) FILTER (WHERE emailed) AS emailed,
       count(*) FILTER (WHERE failed) AS failed, count(*) FILTER (WHERE emailed OR failed OR left_account) AS settled
FROM (SELECT bool_or(i.invitation_id IS NOT NULL) AS invited, bool_or(i.sent_at IS NOT NULL) AS emailed,
             bool_or(i.failed_at IS NOT NULL) AS failed, bool_or(m.status IN ('removed', 'deactivated')) AS left_account
      FROM memberships m LEFT JOIN invitations i ON i.membership_id = m.membership_id
      WHERE m.added_by_command = $1
      GROUP BY m.membership_id) per_member
"""


@dataclass(frozen=True)
class Rows:
    """A command's rows, as its handling left them."""

    rows: int
    created: int
    refused: int


@dataclass(frozen=True)
class Counted:
    progress: AddProgress
    settled: int  # new members emailed, whose invitation failed, or who left before an email reached them


def rows_of(results: Sequence[dict[str, Any]]) -> Rows:
    """From the results of `users.add.completed`."""
    return Rows(len(results), sum(r.get("outcome") == "accepted" for r in results),
                sum(r.get("outcome") == "rejected" for r in results))


async def tracked_rows(conn: asyncpg.Connection, command_id: str) -> Rows | None:
    """A large command's rows, kept beside its outcome (command_progress) when it was done."""
    found = await conn.fetchrow("SELECT rows, created, refused FROM command_progress WHERE command_id = $1", command_id)
    return Rows(found["rows"], found["created"], found["refused"]) if found else None


async def count(conn: asyncpg.Connection, command_id: str, rows: Rows) -> Counted:
    found = await conn.fetchrow(_COUNTS, command_id)
    assert found is not None  # an aggregate has one row
    progress = AddProgress(rows=rows.rows, created=rows.created, invited=found["invited"], emailed=found["emailed"],
                           failed=rows.refused + found["failed"], done=found["settled"] >= rows.created)
    return Counted(progress, found["settled"])
