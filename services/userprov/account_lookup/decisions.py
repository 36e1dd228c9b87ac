"""Welcome or transfer for the memberships waiting in PostgreSQL, a batch per transaction, in
turn order across accounts (userprov.turns): a large paste never holds back another account."""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from itertools import groupby
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import structlog

from contracts import routing
from contracts.events import InvitationIssued, IssuedInvitation, MembershipsCreated
from userprov import lifecycle
from userprov.account_lookup import sql
from userprov.runtime import tracing
from userprov.runtime.unit_of_work import Transaction, UnitOfWork

log = structlog.get_logger()


class LocalMailing(Protocol):
    """The invitation-mailing scheduler of this process, when it runs one."""

    async def claim_in(self, conn: asyncpg.Connection, invitation_ids: list[UUID]) -> list[Any] | None: ...

    def hand(self, claims: list[Any]) -> None: ...


class Decisions:
    """A Batch (userprov.runtime.scheduling) of memberships waiting for their decision. With the
    mailing scheduler in the same process, the invitations of small work are also claimed for it
    in the decision's transaction: their emails leave one commit sooner."""

    def __init__(self, cooldown_seconds: float, mailing: LocalMailing | None = None) -> None:
        self._cooldown_seconds = cooldown_seconds  # USERPROV_RESEND_COOLDOWN_SECONDS: see lifecycle.decide
        self._mailing = mailing

    async def take(self, conn: asyncpg.Connection, limit: int, skip: Sequence[UUID]) -> list[sql.PendingMembership]:
        return await sql.take_waiting(conn, limit, skip)

    def key(self, item: sql.PendingMembership) -> UUID:
        return item.membership_id

    def announced(self, signal: MembershipsCreated) -> list[UUID]:
        return signal.membership_ids

    async def take_these(self, conn: asyncpg.Connection, keys: Sequence[UUID]) -> list[sql.PendingMembership]:
        return await sql.take_these(conn, keys)

    async def oldest_waiting(self, conn: asyncpg.Connection) -> float:
        return await sql.oldest_waiting(conn)

    async def act(self, tx: Transaction, pending: Sequence[sql.PendingMembership], express: bool = False) -> None:
        """A person active in another account is invited to transfer; anyone else gets a welcome.
        One invitation.issued per origin: each carries the correlation id and trace context of
        the command that added its people."""
        with ExitStack() as spans:
            traces = {
                o: spans.enter_context(tracing.working(routing.ACCOUNT_LOOKUP, "decide invitations", o.trace))
                for o in {m.origin for m in pending}
            }
            issued = await lifecycle.decide(
                tx.conn,
                [
                    lifecycle.Decision(m.membership_id, m.account_id, lifecycle.invitation_kind(m.home_account_id), m.home_account_id,
                                       m.origin.traced(traces[m.origin]))
                    for m in pending
                ],
                self._cooldown_seconds,
            )
            if express and self._mailing is not None:
                claims = await self._mailing.claim_in(tx.conn, [i.invitation_id for i in issued])
                if claims:
                    tx.after_commit.append(partial(self._mailing.hand, claims))
            for origin, same_origin in groupby(sorted(issued, key=_origin_order), key=lambda i: i.origin):
                tx.emit(
                    InvitationIssued(invitations=[IssuedInvitation(invitation_id=i.invitation_id, kind=i.kind) for i in same_origin]),
                    origin.correlation_id,
                    origin.trace,
                )


class DecideHere:
    """The decision of small work, taken in the transaction that created the memberships, when
    this process runs user-creation and account-lookup (as `userprov run` does): one commit and
    one hand-off less before the email. In a savepoint: should it fail, the memberships still
    commit as pending, and the lookup's own path decides them."""

    def __init__(self, decisions: Decisions) -> None:
        self._decisions = decisions

    async def __call__(self, uow: UnitOfWork, membership_ids: Sequence[UUID]) -> bool:
        tx = Transaction(uow.conn, uow.correlation_id)
        try:
            async with uow.attempt():
                taken = await sql.take_these(uow.conn, membership_ids)
                if taken:
                    await self._decisions.act(tx, taken, express=True)
        except Exception as error:  # noqa: BLE001 - the memberships wait for the lookup's own path instead
            log.warning("decision_beside_creation_failed", error=repr(error))
            return False
        uow.carry(tx)
        return len(taken) == len(membership_ids)


def _origin_order(issued: lifecycle.Issued) -> tuple[str, str, str]:
    o = issued.origin
    return (o.correlation_id or "", o.traceparent or "", o.tracestate or "")
