"""An account's audit trail for operators, through the public `audit.list` query like any
integrator: every entry page by page (export), and the hash chain re-computed from the account's
checkpoint (verify)."""
from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import routing
from contracts.queries import AUDIT_LIST_MAX, AuditEntry, AuditList, AuditListReply, AuditOrder
from userprov import __version__
from userprov.audit.chain import Break, first_break
from userprov.operations import ocsf
from userprov.operations.bus import public_bus
from userprov.public_bus import NoAnswer


class AuditRefused(NoAnswer):
    """audit.list was refused: its reason and message (an unknown account, a forbidden reader)."""


async def pages(amqp_url: str, account_id: str, *, since: datetime | None = None, until: datetime | None = None,
                order: AuditOrder = "oldest_first", requested_by: str | None = None,
                timeout: float = 30.0) -> AsyncGenerator[AuditListReply, None]:
    """Every page of the account's entries (in `order`), through next_cursor."""
    cursor = None
    async with public_bus(amqp_url, "userprov audit") as bus:
        while True:
            query = AuditList(account_id=account_id, requested_by=requested_by, since=since, until=until, order=order,
                              cursor=cursor, limit=AUDIT_LIST_MAX)
            answer = await bus.ask(routing.AUDIT_LIST, query, timeout)
            if answer.type == routing.COMMAND_REJECTED:
                raise AuditRefused(f"audit.list was refused: {answer.body.decode(errors='replace')}")
            page = AuditListReply.model_validate_json(answer.body)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def chained(account_id: str, entry: AuditEntry) -> dict[str, Any]:
    """An entry as userprov.audit.chain reads it."""
    return {**entry.model_dump(), "account_id": account_id, "hash": bytes.fromhex(entry.hash)}


@dataclass(frozen=True)
class Verified:
    checkpoint: int  # the seq the chain was checked from
    head: int  # the last entry checked
    head_hash: bytes  # its hash: kept elsewhere, a later verify must pass through it
    broken: Break | None


async def verify(amqp_url: str, account_id: str, timeout: float = 30.0) -> Verified:
    """Re-computes the account's chain, oldest first, from its checkpoint. Each page is checked with
    the next one behind it, so that an entry moved across a page's end is still found as moved;
    the account's head, as the last page read it, finds the newest entries deleted."""
    start: tuple[int, bytes] | None = None
    checkpoint = 0
    window: list[dict[str, Any]] = []
    async with aclosing(pages(amqp_url, account_id, timeout=timeout)) as every_page:  # its bus closes when this returns early
        async for page in every_page:
            if start is None:
                checkpoint = page.checkpoint.seq
                start = (checkpoint, bytes.fromhex(page.checkpoint.hash))
            entries = [chained(account_id, e) for e in page.entries]
            if window:
                broken = first_break(window + entries, *start)
                if broken is not None and broken.seq <= window[-1]["seq"]:
                    return Verified(checkpoint, start[0], start[1], broken)
                start = (window[-1]["seq"], window[-1]["hash"])
            window = entries
            head = (page.head.seq, bytes.fromhex(page.head.hash))
    assert start is not None  # pages() yields at least one page
    broken = first_break(window, *start, head=head)
    last_seq, last_hash = (window[-1]["seq"], window[-1]["hash"]) if window else start
    return Verified(checkpoint, last_seq, last_hash, broken)


def as_jsonl(account_id: str, entry: AuditEntry) -> str:
    return json.dumps({"account_id": account_id, **entry.model_dump(mode="json")}, ensure_ascii=False, separators=(",", ":"))


def as_ocsf(account_id: str, entry: AuditEntry) -> str:
    return json.dumps(ocsf.event(account_id, entry, __version__), ensure_ascii=False, separators=(",", ":"))


FORMATS: dict[str, Callable[[str, AuditEntry], str]] = {"jsonl": as_jsonl, "ocsf": as_ocsf}


async def export(amqp_url: str, account_id: str, write: Callable[[str], None], *, since: datetime | None = None,
                 until: datetime | None = None, format: str = "jsonl", timeout: float = 30.0) -> int:
    """Writes the account's entries oldest first, one line each; returns how many. Should `write`
    raise (the reader went away), the bus is closed before the error goes on."""
    line = FORMATS[format]
    written = 0
    async with aclosing(pages(amqp_url, account_id, since=since, until=until, timeout=timeout)) as every_page:
        async for page in every_page:
            for entry in page.entries:
                write(line(account_id, entry))
                written += 1
    return written
