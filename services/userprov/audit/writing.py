"""Writing audit entries in the transaction of their change, by the statement that writes the
change's last part (a unit's inbox claim and outbox rows, the mailer's outcomes): no round trip
of their own. Here each entry's canonical form is made, but for its seq and time; the database
function audit_append (migration 0023) locks the accounts' heads (in account order, so that
units touching several accounts never deadlock), reads the time, numbers and chains the entries
and moves the heads. The heads stay locked to the commit: concurrent writers of one account
append one after the other, and `at` never goes back as seq grows."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args
from uuid import UUID

from contracts.queries import AuditAction
from userprov.audit import chain
from userprov.audit.actors import Cause

ACTIONS = frozenset(get_args(AuditAction))


@dataclass(frozen=True)
class Entry:
    """An entry before it is chained: what changed, for whom, and why."""

    account_id: str
    action: str
    cause: Cause
    user_id: UUID | None
    email: str | None
    changes: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:  # audit.list's filter names only these
            raise ValueError(f"{self.action!r} is not an audit action of contracts.queries.AuditAction")

    def unchained(self) -> dict[str, Any]:
        """The entry as `userprov.audit.chain.fragments` reads it."""
        return {
            "account_id": self.account_id, "action": self.action,
            "actor": {"kind": self.cause.actor.kind, "id": self.cause.actor.id},
            "target": {"user_id": self.user_id, "email": self.email}, "changes": self.changes,
            "via": self.cause.via, "message_id": self.message_id, "correlation_id": self.correlation_id,
        }


_TYPES = ("text", "text", "text", "text", "uuid", "text", "text", "text", "text", "text", "bytea", "bytea", "bytea")
PARAMETERS = len(_TYPES)


def append_sql(first_parameter: int, keyed_by: str | None = None) -> str:
    """A CTE, `audited`, that appends the entries given as the PARAMETERS arrays of `parameters`,
    numbered from `first_parameter` (migration 0023, audit_append). Its one row must be read by
    the statement (a CTE that writes through a function runs only if read): see `READ_AUDITED`.
    With `keyed_by`, the name of a CTE with a `key` column of type uuid, the entries take one more
    array, of keys, and only those whose key is in the CTE are appended: the entries of the state
    changes that a statement made, in the same statement."""
    arrays = [f"${first_parameter + n}::{t}[]" for n, t in enumerate(_TYPES)]
    if keyed_by is None:
        return f"audited AS (SELECT audit_append({', '.join(arrays)}) AS appended)"
    names = [f"c{n}" for n in range(len(_TYPES))]
    keys = f"${first_parameter + len(_TYPES)}::uuid[]"
    return (
        f"audited AS (SELECT audit_append({', '.join(f'array_agg(e.{c} ORDER BY e.position)' for c in names)}) AS appended"
        f" FROM unnest({', '.join(arrays)}, {keys}) WITH ORDINALITY AS e({', '.join(names)}, key, position)"
        f" JOIN {keyed_by} USING (key))"
    )


# the part of a SELECT list's UNION that makes the statement run `audited`: it yields no row
READ_AUDITED = "FROM audited WHERE appended IS NULL"

def parameters(entries: Sequence[Entry]) -> list[list[Any]]:
    """The arrays `append_sql` takes, in its order: the entries in the order they are chained."""
    columns: list[list[Any]] = [[] for _ in _TYPES]
    (account_id, action, actor_kind, actor_id, user_id, email, changes, via, message_id, correlation_id, head, middle,
     tail) = columns
    for e in entries:
        text = chain.changes_text(e.changes)
        first, second, third = chain.fragments(e.unchained(), text)
        account_id.append(e.account_id)
        action.append(e.action)
        actor_kind.append(e.cause.actor.kind)
        actor_id.append(e.cause.actor.id)
        user_id.append(e.user_id)
        email.append(e.email)
        changes.append(text)
        via.append(e.cause.via)
        message_id.append(e.message_id)
        correlation_id.append(e.correlation_id)
        head.append(first)
        middle.append(second)
        tail.append(third)
    return columns
