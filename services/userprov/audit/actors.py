"""Who made a change, and through which door: what each audit entry says of its cause.

A front door of userprov (the SCIM server, the invitation page, the operator's CLI) publishes
with headers naming the door (`x-userprov-via`) and, for SCIM, the token it acts for
(`x-userprov-actor`). Anyone can set headers, so they are believed only from a trusted publisher
(userprov.runtime.publisher; a replay is trusted only when its operator and its original were, and
keeps its original's headers). From anyone else the entry says `via: bus`. Through any door, a
command's `requested_by` user is the actor (its permissions were judged by them: an operator's
`userprov import --requested-by`); without one, the door's actor or, on the bus, the publishing
service's RabbitMQ user. What userprov
does by itself (its schedulers, its internal events) is the `system`'s."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from contracts.registry import INTERNAL_EVENTS
from userprov.runtime.envelope import Envelope

ActorKind = Literal["user", "service", "scim_token", "invitee", "operator", "system"]
Via = Literal["bus", "scim", "links", "cli", "system"]

# the doors that say so in x-userprov-via, and who acts through each
DOORS: dict[str, ActorKind] = {"scim": "scim_token", "links": "invitee", "cli": "operator"}


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None


@dataclass(frozen=True)
class Cause:
    """Who acts, and through which door."""

    actor: Actor
    via: Via

    def invitee(self, user_id: str) -> Cause:
        """Through the invitation page, the person is the one whose invitation it is."""
        return replace(self, actor=Actor("invitee", user_id)) if self.actor.kind == "invitee" else self


SYSTEM = Cause(Actor("system", None), "system")


def publisher(envelope: Envelope, trusted: bool) -> str | None:
    """The RabbitMQ user the message stands for: its own publisher's, or, for a trusted copy
    (handed to the bulk lane, or replayed from a parking queue), its original's."""
    if trusted and envelope.original_user:
        return envelope.original_user
    return envelope.user_id


def cause_of(envelope: Envelope, requested_by: str | None, trusted: bool) -> Cause:
    """The cause of what a message does: see the module's doc."""
    if envelope.routing_key in INTERNAL_EVENTS:
        return SYSTEM
    via: Via = envelope.via if trusted and envelope.via in DOORS else "bus"  # type: ignore[assignment]  # a key of DOORS
    if requested_by is not None:  # the user the command's permissions were judged by, whatever the door
        return Cause(Actor("user", requested_by), via)
    if via != "bus":
        kind = DOORS[via]
        return Cause(Actor(kind, publisher(envelope, trusted) if kind == "operator" else envelope.actor_id), via)
    return Cause(Actor("service", publisher(envelope, trusted)), "bus")
