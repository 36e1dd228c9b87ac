"""Records what came of each email as soon as it is known: the outcomes that arrive while one
transaction commits go together in the next (group commit), so a crash re-sends at most the
emails whose SMTP exchange was open or whose outcome was not yet committed, a few per process."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import structlog

from contracts.events import InvitationFailed, InvitationSent
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.mailer import SmtpOutcome
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.runtime import metrics
from userprov.runtime.errors import retry_transient
from userprov.runtime.origin import Origin
from userprov.runtime.trace_context import Carrier
from userprov.runtime.unit_of_work import OnCommit, Transaction, transaction
from userprov.settings import Settings

log = structlog.get_logger()


@dataclass(frozen=True)
class Outcome:
    invitation: sql.ClaimedInvitation
    smtp: SmtpOutcome
    email: RenderedEmail | None = None  # None when nothing was rendered (the claim was given back)
    trace: Carrier | None = None  # the context its event carries: the span that sent it, else the invitation's


class Recorder:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._waiting: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._closing = False

    def add(self, outcome: Outcome) -> None:
        self._waiting.append(outcome)
        self._arrived.set()

    def close(self) -> None:
        """`run` returns once what was added is recorded."""
        self._closing = True
        self._arrived.set()

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        s = self._settings
        while not (self._closing and not self._waiting):
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._waiting = self._waiting, []
            if not batch:
                continue
            try:
                await retry_transient(lambda: self._record(pool, on_commit, batch),  # noqa: B023
                                      seconds=s.transient_retry_seconds, backoff_max=s.transient_backoff_max_seconds)
            except Exception:  # noqa: BLE001 - the claims lapse and the invitations go again (userprov.invitation_mailing.sql)
                log.exception("email_outcomes_not_recorded", emails=len(batch))

    async def _record(self, pool: asyncpg.Pool, on_commit: OnCommit, batch: Sequence[Outcome]) -> None:
        async with transaction(pool, on_commit) as tx:
            await record(tx, batch, self._settings)


async def record(tx: Transaction, batch: Sequence[Outcome], settings: Settings) -> None:
    """Sent, failed, or back in the queue (a temporary failure waits its backoff; an email not
    tried waits for nothing), each with its event. Safe to repeat: each change is conditional
    on the claim still holding its invitation."""
    delivered = {o.invitation.invitation_id: o.invitation.token_hash for o in batch if o.smtp.result == "delivered"}
    failed = {o.invitation.invitation_id: (o.invitation.token_hash, _failure(o, settings)) for o in batch if _ends_failed(o, settings)}
    again = {
        o.invitation.invitation_id: (
            o.invitation.token_hash,
            0.0 if o.smtp.result == "not_tried" else backoff(o.invitation.attempts, settings),
            o.smtp.result == "not_tried",
        )
        for o in batch
        if o.smtp.result == "not_tried" or (o.smtp.result == "temporary" and not _ends_failed(o, settings))
    }
    sent_counts = await sql.mark_sent(tx.conn, delivered) if delivered else {}
    now_failed = await sql.mark_failed(tx.conn, failed) if failed else set()
    if again:
        await sql.give_back(tx.conn, again)
    for o in batch:
        i = o.invitation
        if i.invitation_id in sent_counts and o.email is not None:
            tx.emit(
                InvitationSent(
                    invitation_id=i.invitation_id, account_id=i.account_id, user_id=i.profile_id, email=i.email, kind=i.kind,
                    expires_at=i.expires_at, sent_count=sent_counts[i.invitation_id], template=o.email.template,
                    template_fallback=o.email.fallback,
                ),
                i.origin.correlation_id,
                o.trace or i.origin.trace,
            )
        elif i.invitation_id in now_failed:
            metrics.EMAILS.labels("failed").inc()
            origin = i.origin.traced(o.trace) if o.trace else i.origin
            emit_failed(tx, i.invitation_id, i.account_id, i.profile_id, i.email, failed[i.invitation_id][1], origin)


def emit_failed(tx: Transaction, invitation_id: UUID, account_id: str, user_id: UUID, email: str, reason: str, origin: Origin) -> None:
    tx.emit(
        InvitationFailed(invitation_id=invitation_id, account_id=account_id, user_id=user_id, email=email, reason=reason),
        origin.correlation_id,
        origin.trace,
    )


def _ends_failed(outcome: Outcome, settings: Settings) -> bool:
    return outcome.smtp.result == "permanent" or (
        outcome.smtp.result == "temporary" and outcome.invitation.attempts >= settings.smtp_attempts
    )


def _failure(outcome: Outcome, settings: Settings) -> str:
    reason = outcome.smtp.reason or "undeliverable"
    if outcome.smtp.result == "temporary":
        return f"temporary failure, retries exhausted ({settings.smtp_attempts} tries): " + reason.removeprefix("temporary failure: ")
    return reason


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next try after `attempts` tries: exponential, bounded, with jitter."""
    pause = min(settings.smtp_backoff_max_seconds, settings.smtp_backoff_seconds * 2 ** max(0, attempts - 1))
    return pause + random.uniform(0, settings.smtp_backoff_seconds)
