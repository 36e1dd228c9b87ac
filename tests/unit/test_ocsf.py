"""Audit entries as OCSF events: each action's event is valid against the OCSF 1.8.0 schema of
its class, as schema.ocsf.io exports it (bundled by the ocsf-json-schema package, which also
writes the JSON Schema of a class), and lands in the class that fits it."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.queries import AuditEntry
from tests.support.ocsf_schema import ocsf_errors
from userprov.operations import ocsf


def entry(action: str, changes: dict[str, Any] | None = None, actor: tuple[str, str | None] = ("user", "admin@example.com"),
          target: bool = True) -> AuditEntry:
    return AuditEntry.model_validate({
        "seq": 7, "at": datetime(2026, 11, 30, 9, 30, 0, 123456, tzinfo=UTC), "action": action,
        "actor": {"kind": actor[0], "id": actor[1]},
        "target": {"user_id": str(uuid.uuid4()) if target else None, "email": "ada@example.com" if target else None},
        "changes": changes or {}, "via": "bus", "message_id": "m-1", "correlation_id": "c-1", "hash": "ab" * 32,
    })


EXPECTED = [
    (entry("user.added", {"status": "invited"}), 3006, 3),
    (entry("user.removed"), 3006, 4),
    (entry("user.activated", actor=("invitee", str(uuid.uuid4()))), 3001, 2),
    (entry("user.reactivated"), 3001, 2),
    (entry("user.deactivated", actor=("scim_token", str(uuid.uuid4()))), 3001, 5),
    (entry("user.suspended"), 3001, 5),
    (entry("user.updated", {"first_name": {"before": "Ada", "after": "Augusta"}}), 3001, 99),
    (entry("user.updated", {"role": {"before": None, "after": "admin"}}), 3005, 1),
    (entry("user.updated", {"role": {"before": "admin", "after": None}}), 3005, 2),
    (entry("scim_token.added", {"token_id": str(uuid.uuid4())}, target=False), 3005, 1),
    (entry("scim_token.revoked", {"token_id": str(uuid.uuid4())}, actor=("operator", "ops"), target=False), 3005, 2),
    (entry("account.upserted", {"created": True, "name": "Acme"}, actor=("service", "platform"), target=False), 3006, 6),
    (entry("account.upserted", {"created": False}, target=False), 3006, 99),
    (entry("invitation.sent", actor=("system", None)), 3006, 99),
    (entry("invitation.expired", actor=("system", None)), 3006, 99),
    (entry("command.rejected", {"reason": "forbidden"}, target=False), 3006, 99),
    (entry("user.transferred", {"moved": {"session_history": 2}}), 3006, 99),
]


class TestOcsfEvents:
    @pytest.mark.parametrize(("audited", "class_uid", "activity_id"), EXPECTED, ids=[f"{e.action}-{c}-{a}" for e, c, a in EXPECTED])
    def test_each_action_is_valid_ocsf_of_the_class_that_fits(self, audited: AuditEntry, class_uid: int, activity_id: int) -> None:
        """Valid against its class's schema, in the class and activity of the how-to's table."""
        event = ocsf.event("acme", audited, "0.1.0")
        assert ocsf_errors(event) == []
        assert (event["class_uid"], event["activity_id"], event["type_uid"]) == (class_uid, activity_id, class_uid * 100 + activity_id)
        assert event["time"] == 1796031000123 and event["metadata"]["uid"] == "acme/7" and event["metadata"]["version"] == "1.8.0"
        assert event["unmapped"]["userprov"]["hash"] == "ab" * 32, "the whole entry travels along"

    def test_a_refused_command_is_a_failure_with_its_reason(self) -> None:
        """status_id 2 (Failure), and the refusal's reason in status_code."""
        event = ocsf.event("acme", entry("command.rejected", {"reason": "last_admin"}), "0.1.0")
        assert (event["status_id"], event["status_code"]) == (2, "last_admin")

    def test_the_check_finds_what_is_not_ocsf(self) -> None:
        """A wrong activity, an attribute the class has not, a missing required one, another version."""
        event = ocsf.event("acme", entry("user.removed"), "0.1.0")
        assert ocsf_errors({**event, "activity_id": 42})
        assert ocsf_errors({**event, "colour": "blue"}), "no attribute the class does not have"
        assert ocsf_errors({key: value for key, value in event.items() if key != "group"}), "Group Management needs its group"
        assert ocsf_errors({**event, "metadata": {**event["metadata"], "version": "1.9.0"}})
