"""Failed invitations for operators, through userprov's public interface like any integrator:
the `invitations.failed` query and the `invitations.retry_failed` command, whose outcome is
read back with `commands.get`."""
from __future__ import annotations

from dataclasses import dataclass

from contracts import routing
from contracts.base import Contract
from contracts.commands import InvitationsRetryFailed
from contracts.queries import FailedInvitation, InvitationsFailed, InvitationsFailedReply
from userprov.operations.bus import public_bus, refusal_of
from userprov.public_bus import NoAnswer, PublicBus


@dataclass(frozen=True)
class Retried:
    command_id: str
    retried: int | None  # None when the command was refused
    refusal: str | None = None


async def _ask(bus: PublicBus, routing_key: str, query: Contract, timeout: float) -> bytes:
    answer = await bus.ask(routing_key, query, timeout)
    if answer.type == routing.COMMAND_REJECTED:
        raise NoAnswer(f"{routing_key} was refused: {answer.body.decode(errors='replace')}")
    return answer.body


async def failed(amqp_url: str, account_id: str | None, limit: int, timeout: float = 10.0) -> list[FailedInvitation]:
    """Up to `limit` people whose latest invitation failed, oldest failure first, page by page."""
    found: list[FailedInvitation] = []
    after = None
    async with public_bus(amqp_url, "userprov invitations") as bus:
        while len(found) < limit:
            query = InvitationsFailed(account_id=account_id, after=after, limit=min(1000, limit - len(found)))
            page = InvitationsFailedReply.model_validate_json(await _ask(bus, routing.INVITATIONS_FAILED, query, timeout))
            found.extend(page.invitations)
            if page.next_after is None:
                break
            after = page.next_after
    return found


async def retry_failed(amqp_url: str, account_id: str | None, timeout: float = 60.0) -> Retried:
    """Publishes invitations.retry_failed (confirmed, mandatory) and waits for its outcome."""
    async with public_bus(amqp_url, "userprov invitations") as bus:
        command_id = await bus.publish(routing.INVITATIONS_RETRY_FAILED, InvitationsRetryFailed(account_id=account_id, requested_by=None))
        event = await bus.outcome(command_id, timeout)
    if event.type == routing.COMMAND_REJECTED:
        return Retried(command_id, None, refusal_of(event))
    return Retried(command_id, int(event.body["retried"]))
