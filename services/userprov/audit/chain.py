"""The audit trail's hash chain: each entry's hash is SHA-256 of the previous entry's hash and of
the entry's canonical form, per account, starting from GENESIS (or from a retention checkpoint).

Pure functions, shared by the writer (userprov.audit.writing) and by `userprov audit verify`."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

GENESIS = bytes(32)
"""The previous hash of an account's first entry (seq 1)."""

BreakKind = Literal["changed", "deleted", "reordered"]


@dataclass(frozen=True)
class Break:
    """The first entry at which a chain does not hold."""

    seq: int
    kind: BreakKind
    message: str


@lru_cache(maxsize=256)  # the entries of one transaction share their time
def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("an audit entry's time must carry its time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_at(at: datetime | str) -> str:
    """ISO 8601 in UTC with microseconds and a Z: "2026-12-05T20:38:24.123456Z"."""
    return at if isinstance(at, str) else _utc_text(at)


def _user_id(value: UUID | str | None) -> str | None:
    if value is None or isinstance(value, UUID):
        return None if value is None else str(value)  # a UUID's text is lower-case
    return str(UUID(value))


_SCALARS = frozenset({str, int, bool, type(None)})


def _checked_changes(value: Any, path: str = "changes") -> Any:
    """Only values that come back the same from jsonb: no floats (nor anything JSON has not)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{path}: keys must be strings, not {type(key).__name__}")
            if type(item) not in _SCALARS:
                _checked_changes(item, f"{path}.{key}")
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            if type(item) not in _SCALARS:
                _checked_changes(item, f"{path}[{index}]")
        return value
    if isinstance(value, (str, int)) and not isinstance(value, float):  # a str or int subclass (an enum member)
        return value
    raise TypeError(f"{path}: {kind.__name__} is not allowed in an audit entry's changes")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_text(entry: Mapping[str, Any], seq: int, at: str) -> str:
    actor = entry["actor"]
    target = entry["target"]
    document = {
        "account_id": entry["account_id"],
        "seq": seq,
        "at": at,
        "action": entry["action"],
        "actor": {"kind": actor["kind"], "id": actor["id"]},
        "target": {"user_id": _user_id(target["user_id"]), "email": target["email"]},
        "changes": _checked_changes(entry["changes"]),
        "via": entry["via"],
        "message_id": entry["message_id"],
        "correlation_id": entry["correlation_id"],
    }
    return _CANONICAL.encode(document)


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact UTF-8 JSON."""
    return _canonical_text(entry, int(entry["seq"]), format_at(entry["at"])).encode("utf-8")


def changes_text(changes: Any) -> str:
    """An entry's changes as they are in its canonical form (and, parsed, in its row)."""
    return _CANONICAL.encode(_checked_changes(changes))


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


_string = json.encoder.encode_basestring  # what _CANONICAL writes a string with (ensure_ascii=False)


def fragments(entry: Mapping[str, Any], changes: str | None = None) -> tuple[bytes, bytes, bytes]:
    """An entry's canonical form without its seq and time, which only the writer knows once it
    holds the account's head: (head, middle, tail) such that
    `canonical(entry) == head + at + middle + seq + tail` (`at` as `format_at` writes it, `seq` in
    decimal, both ASCII). The database chains them (migration 0023, audit_append). `changes`: the
    entry's `changes_text`, when the caller has it already. Written out key by key, in sorted
    order (a unit test holds it to `canonical`), rather than cut out of `canonical`'s text."""
    actor, target = entry["actor"], entry["target"]
    head = (f'{{"account_id":{_string(entry["account_id"])},"action":{_string(entry["action"])},'
            f'"actor":{{"id":{_text(actor["id"])},"kind":{_string(actor["kind"])}}},"at":"')
    middle = (f'","changes":{changes_text(entry["changes"]) if changes is None else changes},'
              f'"correlation_id":{_text(entry["correlation_id"])},"message_id":{_text(entry["message_id"])},"seq":')
    tail = (f',"target":{{"email":{_text(target["email"])},"user_id":{_text(_user_id(target["user_id"]))}}},'
            f'"via":{_string(entry["via"])}}}')
    return head.encode("utf-8"), middle.encode("utf-8"), tail.encode("utf-8")


COLUMNS = ("account_id, seq, at, action, actor_kind, actor_id, target_user_id, target_email, changes::text AS changes, via,"
           " message_id, correlation_id, hash")
"""The columns of audit_entries that `from_row` reads (`changes` as its JSON text)."""


def from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An audit_entries row (selected as COLUMNS) as an entry of this module, its hash included."""
    changes = row["changes"]
    return {
        "account_id": row["account_id"], "seq": row["seq"], "at": row["at"], "action": row["action"],
        "actor": {"kind": row["actor_kind"], "id": row["actor_id"]},
        "target": {"user_id": row["target_user_id"], "email": row["target_email"]},
        "changes": json.loads(changes) if isinstance(changes, str) else changes,
        "via": row["via"], "message_id": row["message_id"], "correlation_id": row["correlation_id"],
        "hash": bytes(row["hash"]),
    }


def link(previous: bytes, entry: Mapping[str, Any]) -> bytes:
    """The entry's hash, given the hash of the entry before it."""
    return hashlib.sha256(previous + canonical(entry)).digest()


def _written_for(entries: Iterable[Mapping[str, Any]], seq: int, previous: bytes, first_position: int) -> int | None:
    """Where the entry written as `seq` (after `previous`) now is, among the entries from
    `first_position` on; None when it is nowhere (the entry at `seq` was rather changed)."""
    for position, entry in enumerate(entries, start=first_position):
        if bytes(entry["hash"]) == link(previous, {**entry, "seq": seq}):
            return position
    return None


def first_break(
    entries: Iterable[Mapping[str, Any]],
    start_seq: int = 0,
    start_hash: bytes = GENESIS,
    *,
    head: tuple[int, bytes] | None = None,
) -> Break | None:
    """Walks an account's entries in ascending seq from a checkpoint (the seq and hash of the
    last pruned entry; seq 0 and GENESIS when none was) and names the first that breaks the chain:

    - `deleted`: a seq is missing (or, given the account's `head` (seq, hash), the last entries);
    - `reordered`: the entries come out of seq order, or the entry written for this seq is found
      later (two swapped entries name the first of the two);
    - `changed`: the entry's hash is not the chain's hash of its content.

    Entries at or below the checkpoint before the first later one are covered by the
    checkpoint and skipped. None when the chain holds."""
    expected = start_seq + 1
    previous = start_hash
    iterator: Iterator[Mapping[str, Any]] = iter(entries)
    for entry in iterator:
        seq = int(entry["seq"])
        if seq < expected:
            if expected == start_seq + 1 and seq <= start_seq:
                continue
            return Break(seq, "reordered", f"Entry {seq} comes after entry {expected - 1}: the entries are out of order.")
        if seq > expected:
            missing = f"Entry {expected} is missing" if seq == expected + 1 else f"Entries {expected} to {seq - 1} are missing"
            return Break(expected, "deleted", f"{missing}: the chain goes from entry {expected - 1} to entry {seq}.")
        if bytes(entry["hash"]) != link(previous, entry):
            moved_to = _written_for(iterator, expected, previous, expected + 1)
            if moved_to is not None:
                return Break(
                    seq, "reordered",
                    f"The entry written as entry {seq} is now entry {moved_to}: the entries were reordered.")
            return Break(seq, "changed", f"Entry {seq} was changed after it was written: its hash does not match its content.")
        previous = bytes(entry["hash"])
        expected += 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq >= expected:
            missing = f"Entry {expected} is missing" if head_seq == expected else f"Entries {expected} to {head_seq} are missing"
            return Break(expected, "deleted", f"{missing}: the account's chain ends at entry {head_seq}.")
        if head_seq == expected - 1 and head_seq > start_seq and bytes(head_hash) != previous:
            return Break(head_seq, "changed", f"Entry {head_seq} is not the one the account's chain ends with.")
    return None
