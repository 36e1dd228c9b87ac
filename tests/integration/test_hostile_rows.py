"""One bad row never sinks a command: text that cannot be stored or sent, or that looks empty,
is a row error, and the good rows of the same command go through."""
from __future__ import annotations

import uuid

from contracts import routing
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient


def person(local: str, domain: str = "example.com") -> str:
    return f"{local}.{uuid.uuid4().hex[:8]}@{domain}"


class TestBadRowsAmongGoodOnes:
    async def test_unstorable_and_invisible_text_are_row_errors(self, bus: BusClient, account) -> None:
        account_id = await account()
        good = [person("good1"), person("good2"), person("good3")]
        done = await add_users(bus, {
            "account_id": account_id,
            "users": [
                {"first_name": "Good", "last_name": "One", "email": good[0]},
                {"first_name": "Sur\ud800", "last_name": "Rogate", "email": person("bad1")},
                {"first_name": "Nul\x00", "last_name": "Name", "email": person("bad2")},
                {"first_name": "Ok", "last_name": "Mail", "email": "bad3\udcff@example.com"},
                {"first_name": "\u200b", "last_name": "Invisible", "email": person("bad4")},
                {"first_name": "\u202eEvil", "last_name": "Bidi", "email": person("bad5")},
            ],
            "pasted": f"Good Two {good[1]}\u2028Pasted Sur\ud800 {person('bad6')}\x85Good Three {good[2]}",
        })
        assert done.routing_key == routing.USERS_ADD_COMPLETED, done.body
        outcome = {r["row"]: (r["outcome"], [(e["field"], e["code"]) for e in r["errors"]]) for r in done.body["results"]}
        assert outcome == {
            1: ("accepted", []),
            2: ("rejected", [("first_name", "invalid_characters")]),
            3: ("rejected", [("first_name", "invalid_characters")]),
            4: ("rejected", [("email", "invalid_characters")]),
            5: ("rejected", [("first_name", "required")]),
            6: ("rejected", [("first_name", "invalid_characters")]),
            7: ("accepted", []),
            8: ("rejected", [("last_name", "invalid_characters")]),
            9: ("accepted", []),
        }


class TestOneMailboxWrittenTwoWays:
    async def test_idn_and_nfd_forms_are_one_person(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account(licences={"gotomeeting": 10})
        tag = uuid.uuid4().hex[:8]
        first = await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "users": [
            {"first_name": "Ana", "last_name": "Idn", "email": f"ana.{tag}@Bücher.example.com"},
            {"first_name": "Zoe", "last_name": "Nfc", "email": f"zo\u00e9.{tag}@example.com"},
        ]})
        assert [r["outcome"] for r in first.body["results"]] == ["accepted", "accepted"]
        assert first.body["results"][0]["email"] == f"ana.{tag}@bücher.example.com"
        again = await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "users": [
            {"first_name": "Ana", "last_name": "Idn", "email": f"ANA.{tag}@xn--bcher-kva.example.com"},
            {"first_name": "Zoe", "last_name": "Nfd", "email": f"zoe\u0301.{tag}@example.com"},
        ]})
        assert [r["outcome"] for r in again.body["results"]] == ["already_member", "already_member"]
        assert [r["user_id"] for r in again.body["results"]] == [r["user_id"] for r in first.body["results"]]
        # the SMTP server is handed the domain in ASCII
        [email] = await emails_to(smtp, f"ana.{tag}@xn--bcher-kva.example.com")
        assert str(email.message["To"]) == f"ana.{tag}@xn--bcher-kva.example.com"
        info = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": f"Ana.{tag}@XN--BCHER-KVA.example.com"})
        assert info["found"] and info["email"] == f"ana.{tag}@bücher.example.com"
