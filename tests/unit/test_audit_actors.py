from __future__ import annotations

from contracts import routing
from userprov.audit.actors import SYSTEM, Actor, Cause, cause_of
from userprov.runtime.envelope import Envelope


def envelope(routing_key: str = routing.USERS_ADD, **fields: object) -> Envelope:
    return Envelope(routing_key, b"{}", "m-1", None, None, 0, **fields)  # type: ignore[arg-type]


class TestCauseOf:
    """Who acted through which door: the doors' headers only from a trusted publisher."""

    def test_a_trusted_doors_headers_are_believed(self) -> None:
        assert cause_of(envelope(via="scim", actor_id="t-1", user_id="scim-svc"), None, True) == Cause(Actor("scim_token", "t-1"), "scim")
        assert cause_of(envelope(via="cli", user_id="ops"), None, True) == Cause(Actor("operator", "ops"), "cli")
        assert cause_of(envelope(routing.INVITATION_ACCEPTED, via="links"), None, True).invitee("u-1") == Cause(Actor("invitee", "u-1"), "links")

    def test_through_a_door_the_requester_is_the_actor(self) -> None:
        """`userprov import --requested-by admin@...`: the admin's permissions were judged, so the
        admin acted, through the CLI (the operator's shared RabbitMQ user said nothing of who)."""
        assert cause_of(envelope(via="cli", user_id="ops"), "admin@x.example", True) == Cause(Actor("user", "admin@x.example"), "cli")

    def test_from_anyone_else_the_bus_and_the_requester_or_the_service(self) -> None:
        assert cause_of(envelope(via="scim", actor_id="t-1", user_id="intruder"), "a@x.example", False) == Cause(
            Actor("user", "a@x.example"), "bus")
        assert cause_of(envelope(via="cli", user_id="intruder"), None, False) == Cause(Actor("service", "intruder"), "bus")
        assert cause_of(envelope(via="elsewhere", user_id="svc"), None, True) == Cause(Actor("service", "svc"), "bus")

    def test_a_copys_original_user_only_when_trusted(self) -> None:
        copy = envelope(user_id="worker", original_user="platform")
        assert cause_of(copy, None, True).actor == Actor("service", "platform")
        assert cause_of(copy, None, False).actor == Actor("service", "worker")

    def test_userprovs_own_messages_are_the_systems(self) -> None:
        assert cause_of(envelope(routing.MEMBERSHIPS_CREATED, via="cli"), None, True) == SYSTEM
