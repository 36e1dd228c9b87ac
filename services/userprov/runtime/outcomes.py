"""What became of each command (its public events, or its refusal), stored in the transaction
that handled it, for `commands.get`."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import routing
from contracts.registry import COMMAND_MODELS, REPLY_MODELS
from userprov.runtime.outbox import OutgoingMessage


def is_command(routing_key: str) -> bool:
    """A command has an outcome to remember; a query or an event does not."""
    return routing_key in COMMAND_MODELS and routing_key not in REPLY_MODELS


def record_cte(first_parameter: int) -> str:
    """SQL of a CTE `outcome` that records a command's outcome from 4 parameters (`parameters`),
    for the statement that commits the command's work. A refusal is replaced by a later handling
    (a command parked after failing, then replayed, ends with the replay's outcome); `done` is
    never replaced."""
    p = [f"${first_parameter + n}" for n in range(4)]
    return (
        f"outcome AS (INSERT INTO command_outcomes (command_id, command_type, outcome, events)"
        f" VALUES ({p[0]}, {p[1]}, {p[2]}, {p[3]}::jsonb)"
        f" ON CONFLICT (command_id) DO UPDATE SET command_type = EXCLUDED.command_type, outcome = EXCLUDED.outcome,"
        f" events = EXCLUDED.events, recorded_at = now() WHERE command_outcomes.outcome <> 'done')"
    )


def parameters(command_id: str, command_type: str, messages: Sequence[OutgoingMessage]) -> list[object]:
    """The command's outcome: its public events, or its refusal."""
    public = [m for m in messages if m.exchange in (routing.EVENTS_EXCHANGE, routing.COMMANDS_EXCHANGE)]
    rejected = any(m.routing_key == routing.COMMAND_REJECTED for m in public)
    return [
        command_id,
        command_type,
        "rejected" if rejected else "done",
        "[" + ",".join(f'{{"type": {json.dumps(m.routing_key)}, "body": {m.body.decode()}}}' for m in public) + "]",
    ]


@dataclass(frozen=True)
class Outcome:
    command_type: str
    outcome: str
    events: list[dict[str, Any]]


async def find(conn: asyncpg.Connection, command_id: str) -> Outcome | None:
    row = await conn.fetchrow("SELECT command_type, outcome, events::text FROM command_outcomes WHERE command_id = $1", command_id)
    return Outcome(row["command_type"], row["outcome"], json.loads(row["events"])) if row else None

