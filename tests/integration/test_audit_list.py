"""`audit.list` over the bus: an account's audit trail newest first (or oldest first), its filters,
keyset pages through the cursor, the chain's checkpoint and head, who may read it, and the
refusal of each bad input. The entries are written into PostgreSQL by tests.support.audit_chains."""
from __future__ import annotations

import base64
from typing import Any

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.audit_chains import START, append, base, pages, person
from tests.support.flows import add_active_member
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient


class TestPages:
    async def test_1200_entries_page_by_page_newest_or_oldest_first(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """Three pages of at most 500 give every entry once, in seq order; the last says so with a
        null cursor; each page carries the checkpoint (none: seq 0) and the head."""
        account_id = await account()
        before = await base(db, account_id)
        written = await append(db, account_id, 1200)
        newest, answers = await pages(bus, {"account_id": account_id, "limit": 500})
        assert [len(a["entries"]) for a in answers] == [500, 500, 200 + before]
        assert [e["seq"] for e in newest] == list(range(before + 1200, 0, -1))
        assert answers[0]["checkpoint"] == {"seq": 0, "hash": "0" * 64}
        assert answers[-1]["head"] == {"seq": before + 1200, "hash": written[-1]["hash"].hex()}
        top = newest[0]
        assert top["hash"] == written[-1]["hash"].hex() and top["changes"] == {"n": before + 1200, "note": "ü"}
        assert top["actor"] == {"kind": "user", "id": f"admin.{account_id}@example.com"} and top["via"] == "bus"
        assert top["target"]["email"] == written[-1]["target"]["email"] and top["message_id"] == f"m-{before + 1200}"
        oldest, _ = await pages(bus, {"account_id": account_id, "limit": 500, "order": "oldest_first"})
        assert oldest == newest[::-1]
        default = await bus.query(routing.AUDIT_LIST, {"account_id": account_id})
        assert len(default["entries"]) == 100 and default["entries"] == newest[:100]


class TestFilters:
    async def test_each_filter_and_their_combination_page_too(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """user_id, email (normalised), actions, since (in) and until (out), together, both orders: each page by page."""
        account_id = await account()
        before = await base(db, account_id)
        written = [e for e in await append(db, account_id, 70) if e["seq"] > before]
        user_id, email = person(3, account_id)

        async def seqs(limit: int = 7, **query: Any) -> list[int]:
            entries, _ = await pages(bus, {"account_id": account_id, "limit": limit, **query})
            return [e["seq"] for e in entries]

        def expected(keep: Any) -> list[int]:
            return [e["seq"] for e in reversed(written) if keep(e)]

        assert await seqs(user_id=str(user_id)) == expected(lambda e: e["target"]["user_id"] == user_id)
        assert await seqs(email=email.upper()) == expected(lambda e: e["target"]["email"] == email), "compared normalised"
        assert await seqs(actions=["user.removed", "user.added"]) == expected(lambda e: e["action"] in ("user.removed", "user.added"))
        since, until = written[10]["at"], written[40]["at"]
        window = expected(lambda e: since <= e["at"] < until)
        assert await seqs(since=since.isoformat(), until=until.isoformat()) == window and len(window) == 30, "since in, until out"
        assert await seqs(since=since.isoformat(), until=until.isoformat(), order="oldest_first") == window[::-1]
        assert await seqs(since=since.isoformat(), until=until.isoformat(), actions=["user.updated"], email=email) == expected(
            lambda e: since <= e["at"] < until and e["action"] == "user.updated" and e["target"]["email"] == email)
        assert await seqs(since=START.replace(year=2030).isoformat()) == []
        assert await seqs(email=address("nobody")) == []


class TestRefusals:
    async def test_bad_input_is_refused_naming_what_is_wrong(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """schema_invalid naming the field; invalid_cursor for a cursor not given, or given for another question; unknown_account."""
        account_id, other = await account(), await account()
        await append(db, account_id, 5)

        async def refused(**query: Any) -> dict[str, Any]:
            answer = await bus.query(routing.AUDIT_LIST, {"account_id": account_id, **query})
            assert "reason" in answer, answer
            return answer

        too_many = await refused(limit=501)
        assert too_many["reason"] == "schema_invalid" and [e["field"] for e in too_many["errors"]] == ["limit"]
        backwards = await refused(since="2026-02-01T00:00:00Z", until="2026-01-01T00:00:00Z")
        assert backwards["reason"] == "schema_invalid" and [e["field"] for e in backwards["errors"]] == ["until"]
        naive = await refused(since="2026-02-01T00:00:00")
        assert naive["reason"] == "schema_invalid" and naive["errors"][0]["code"] == "timezone_aware"
        assert (await refused(actions=[]))["errors"][0]["field"] == "actions"
        assert (await refused(actions=["DROP TABLE"]))["errors"][0]["field"] == "actions.0"
        misspelt = await refused(actions=["user.added", "user.remove"])  # not silently an empty page
        assert [e["field"] for e in misspelt["errors"]] == ["actions.1"] and "user.removed" in misspelt["errors"][0]["message"]
        for garbage in ("x", "!!!", "bm90LWEtY3Vyc29y", "LTEuYWJj"):  # not base64, not ours, "-1.abc"
            assert (await refused(cursor=garbage))["reason"] == "invalid_cursor", garbage
        cursor = (await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "limit": 2}))["next_cursor"]
        assert cursor is not None
        beyond = base64.urlsafe_b64encode(f"{2**63}.".encode() + base64.urlsafe_b64decode(cursor + "==").split(b".")[1]).decode()
        assert (await refused(cursor=beyond, limit=2))["reason"] == "invalid_cursor", "past bigint: once a query PostgreSQL refused"
        elsewhere = await bus.query(routing.AUDIT_LIST, {"account_id": other, "cursor": cursor, "limit": 2})
        assert elsewhere["reason"] == "invalid_cursor" and "another account" in elsewhere["message"]
        assert (await refused(cursor=cursor, limit=2, actions=["user.added"]))["reason"] == "invalid_cursor"
        assert (await refused(cursor=cursor, limit=2, order="oldest_first"))["reason"] == "invalid_cursor"
        assert "entries" in await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "cursor": cursor, "limit": 3}), \
            "another limit is the same question"
        unknown = await bus.query(routing.AUDIT_LIST, {"account_id": "no-such-account"})
        assert unknown["reason"] == "unknown_account"


class TestWhoMayRead:
    async def test_an_admin_of_the_account_only(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        """A trusted platform service (no requested_by) and an active admin read it; a manager, a
        plain member, an admin of another account and a stranger are refused alike."""
        account_id, other = await account(), await account()
        admin, manager, member, elsewhere = address("admin"), address("manager"), address("member"), address("elsewhere")
        await add_active_member(bus, smtp, account_id, admin, role="admin")
        await add_active_member(bus, smtp, account_id, manager, role="manager")
        await add_active_member(bus, smtp, account_id, member)
        await add_active_member(bus, smtp, other, elsewhere, role="admin")
        assert "entries" in await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "requested_by": admin.upper()})
        refused = (manager, member, elsewhere, address("stranger"))
        for who in refused:
            answer = await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "requested_by": who})
            assert answer.get("reason") == "forbidden", (who, answer)
        unknown = await bus.query(routing.AUDIT_LIST, {"account_id": "no-such-account", "requested_by": admin})
        assert unknown["reason"] == "forbidden", "a stranger learns nothing of which accounts exist"
        tried = await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "actions": ["command.rejected"]})
        assert sorted((e["actor"]["id"], e["changes"]["command"], e["changes"]["reason"]) for e in tried["entries"]) == sorted(
            (who, "audit.list", "forbidden") for who in refused), "each refused read is in the account's trail"

    async def test_no_requested_by_only_from_a_trusted_platform_service(self, db: asyncpg.Pool, account) -> None:
        """The handler itself, as account-lookup calls it, for a publisher USERPROV_TRUSTED_PUBLISHERS does not name."""
        import pytest

        from contracts.queries import AuditList
        from userprov.account_lookup.audit_trail import list_audit
        from userprov.runtime.errors import Rejected
        from userprov.runtime.publisher import trusted_publisher

        account_id = await account()
        async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            token = trusted_publisher.set(False)
            try:
                with pytest.raises(Rejected) as refused:
                    await list_audit(AuditList(account_id=account_id), conn)
            finally:
                trusted_publisher.reset(token)
            assert refused.value.reason == "forbidden"
            trusted_publisher.set(True)
            assert (await list_audit(AuditList(account_id=account_id), conn)).account_id == account_id
