from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from userprov.audit.actors import SYSTEM
from userprov.audit.chain import GENESIS, canonical, first_break, format_at, fragments, link
from userprov.audit.writing import Entry

AT = datetime(2026, 12, 5, 20, 38, 24, 123456, tzinfo=UTC)


def entry(seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "account_id": "acme",
        "seq": seq,
        "at": AT + timedelta(seconds=seq),
        "action": "user.added",
        "actor": {"kind": "user", "id": "admin@acme.example"},
        "target": {"user_id": uuid.UUID(int=seq), "email": f"p{seq}@acme.example"},
        "changes": {"role": "user", "products": ["meet"]},
        "via": "bus",
        "message_id": f"m-{seq}",
        "correlation_id": None,
        **fields,
    }


def chained(entries: list[dict[str, Any]], previous: bytes = GENESIS) -> list[dict[str, Any]]:
    for item in entries:
        item["hash"] = previous = link(previous, item)
    return entries


def chain_of(count: int) -> list[dict[str, Any]]:
    return chained([entry(seq) for seq in range(1, count + 1)])


class TestCanonical:
    """The canonical form: sorted compact UTF-8 JSON, UTC microseconds with Z, lower-case UUIDs."""

    def test_form(self) -> None:
        item = entry(1, at=datetime(2026, 12, 5, 21, 38, 24, 123456, tzinfo=timezone(timedelta(hours=1))),
                     target={"user_id": uuid.UUID("ABCDEF00-0000-0000-0000-000000000001"), "email": "p@x.example"})
        text = canonical(item).decode()
        assert text.startswith('{"account_id":"acme","action":"user.added","actor":{"id":"admin@acme.example","kind":"user"},'
                               '"at":"2026-12-05T20:38:24.123456Z",')
        assert '"user_id":"abcdef00-0000-0000-0000-000000000001"' in text
        assert json.loads(text)["target"]["email"] == "p@x.example"

    def test_unicode_names_are_kept_as_utf8(self) -> None:
        item = entry(1, changes={"first_name": "Zoë", "last_name": "Ōtsuka 大塚"})
        assert "Zoë".encode() in canonical(item)
        assert b"\\u" not in canonical(item)
        assert first_break(chained([item])) is None

    def test_key_order_of_changes_does_not_matter(self) -> None:
        assert canonical(entry(1, changes={"a": 1, "b": 2})) == canonical(entry(1, changes={"b": 2, "a": 1}))

    def test_no_user_id(self) -> None:
        assert b'"user_id":null' in canonical(entry(1, target={"user_id": None, "email": None}))

    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError, match=r"changes.seats"):
            canonical(entry(1, changes={"seats": 1.5}))

    def test_a_time_without_zone_is_refused(self) -> None:
        with pytest.raises(ValueError):
            canonical(entry(1, at=datetime(2026, 1, 1)))


_texts = st.text() | st.sampled_from(["seq", "at", "a", '","at":"', ',"seq":0,"target":', '\\', '"', "\u2028", "\U0001f600", "\x00", "\x1f"])
_json = st.recursive(st.none() | st.booleans() | st.integers() | _texts,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3), max_leaves=8)


class TestFragments:
    """What the database chains (migration 0023): the canonical form cut around seq and time."""

    @given(account_id=_texts, action=_texts, actor_id=st.none() | _texts, email=st.none() | _texts,
           changes=st.dictionaries(_texts, _json, max_size=4), message_id=st.none() | _texts,
           correlation_id=st.none() | _texts, seq=st.integers(min_value=1, max_value=2**62))
    def test_joined_with_seq_and_time_they_are_the_canonical_form(
            self, account_id: str, action: str, actor_id: str | None, email: str | None, changes: dict[str, Any],
            message_id: str | None, correlation_id: str | None, seq: int) -> None:
        item = {**entry(1), "seq": seq, "account_id": account_id, "action": action, "actor": {"kind": "user", "id": actor_id},
                "target": {"user_id": None, "email": email}, "changes": changes, "message_id": message_id,
                "correlation_id": correlation_id}
        try:
            whole = canonical(item)
        except UnicodeEncodeError:  # a lone surrogate: no entry can hold one (nor can PostgreSQL)
            return
        head, middle, tail = fragments(item)
        assert head + format_at(item["at"]).encode() + middle + str(seq).encode() + tail == whole


    def test_keys_named_like_seq_and_at_inside_the_changes(self) -> None:
        item = entry(7, changes={"a": {"at": "", "b": 1, "seq": 0}, "seq": 0, "z": [{"x": 0, "seq": 0}]})
        head, middle, tail = fragments(item)
        assert head + format_at(item["at"]).encode() + middle + b"7" + tail == canonical(item)


class TestFirstBreak:
    """The first entry that was changed, deleted or reordered."""

    def test_an_intact_chain_holds(self) -> None:
        assert first_break(chain_of(5)) is None
        assert first_break([]) is None

    def test_changed(self) -> None:
        entries = chain_of(5)
        entries[2]["changes"] = {"role": "admin", "products": ["meet"]}
        found = first_break(entries)
        assert found is not None and (found.seq, found.kind) == (3, "changed")
        assert "Entry 3" in found.message

    def test_changed_with_a_recomputed_hash_breaks_the_next(self) -> None:
        entries = chain_of(5)
        entries[2]["actor"] = {"kind": "system", "id": None}
        entries[2]["hash"] = link(entries[1]["hash"], entries[2])
        found = first_break(entries)
        assert found is not None and (found.seq, found.kind) == (4, "changed")

    def test_deleted(self) -> None:
        entries = chain_of(5)
        del entries[1]
        found = first_break(entries)
        assert found is not None and (found.seq, found.kind) == (2, "deleted")
        assert "Entry 2 is missing" in found.message

    def test_the_last_ones_deleted_are_found_with_the_head(self) -> None:
        entries = chain_of(5)
        head = (5, entries[-1]["hash"])
        found = first_break(entries[:3], head=head)
        assert found is not None and (found.seq, found.kind) == (4, "deleted")
        assert first_break(entries, head=head) is None

    @pytest.mark.parametrize(("first", "second"), [(1, 2), (2, 5)])
    def test_swapped_rows(self, first: int, second: int) -> None:
        """Two rows swapped their seq (each keeping its content and hash)."""
        entries = chain_of(6)
        a, b = entries[first - 1], entries[second - 1]
        a["seq"], b["seq"] = b["seq"], a["seq"]
        entries.sort(key=lambda item: item["seq"])
        found = first_break(entries)
        assert found is not None and (found.seq, found.kind) == (first, "reordered")
        assert f"entry {second}" in found.message

    def test_out_of_seq_order(self) -> None:
        entries = chain_of(4)
        entries[1], entries[2] = entries[2], entries[1]
        found = first_break(entries)
        assert found is not None and found.kind == "deleted"
        found = first_break([entries[0], entries[2], entries[2]])
        assert found is not None and (found.seq, found.kind) == (2, "reordered")

    def test_from_a_checkpoint_after_pruning(self) -> None:
        entries = chain_of(10)
        checkpoint = (4, entries[3]["hash"])
        assert first_break(entries[4:], *checkpoint) is None
        assert first_break(entries, *checkpoint) is None  # what the checkpoint covers is skipped
        found = first_break(entries[5:], *checkpoint)
        assert found is not None and (found.seq, found.kind) == (5, "deleted")
        found = first_break(entries[4:], 4, GENESIS)
        assert found is not None and (found.seq, found.kind) == (5, "changed")


def test_an_entry_names_only_an_action_that_audit_list_can_filter_by() -> None:
    Entry("acme", "user.removed", SYSTEM, None, None)
    with pytest.raises(ValueError, match="user.remove"):
        Entry("acme", "user.remove", SYSTEM, None, None)
