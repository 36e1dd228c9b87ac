"""Records what came of each email as soon as it is known: one statement at a time, with the
outcomes that arrived while the last one committed. When outcomes come fast (more than one per
half GROUP_SECONDS), at most one statement per GROUP_SECONDS, unless a connection's worth is
waiting (group commit). A crash therefore re-sends at most the emails whose SMTP exchange was
open or whose outcome was not yet committed: at full speed about twice the SMTP connections of
one process, at ordinary rates the few in flight."""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from contracts import routing
from contracts.base import Contract
from contracts.events import InvitationFailed, InvitationSent
from userprov.audit.actors import SYSTEM
from userprov.audit.writing import Entry
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.mailer import SmtpOutcome
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.runtime import metrics
from userprov.runtime.errors import retry_transient
from userprov.runtime.origin import Origin
from userprov.runtime.outbox import OutgoingMessage
from userprov.runtime.trace_context import Carrier
from userprov.runtime.unit_of_work import OnCommit, Transaction
from userprov.settings import Settings

log = structlog.get_logger()

GROUP_SECONDS = 0.02


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
        self._group = settings.smtp_connections  # recorded at once when this many are waiting
        self._last_arrival = 0.0
        self._interval = 1.0  # between outcomes, a moving average (seconds)

    def add(self, outcome: Outcome) -> None:
        now = time.monotonic()
        self._interval += 0.1 * (min(now - self._last_arrival, 1.0) - self._interval)
        self._last_arrival = now
        self._waiting.append(outcome)
        self._arrived.set()

    def close(self) -> None:
        """`run` returns once what was added is recorded."""
        self._closing = True
        self._arrived.set()

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        s = self._settings
        last = 0.0
        while not (self._closing and not self._waiting):
            await self._arrived.wait()
            self._arrived.clear()
            pause = last + GROUP_SECONDS - time.monotonic()
            fast = self._interval * 2 < GROUP_SECONDS  # a pause would gather more outcomes than one
            if fast and pause > 0 and len(self._waiting) < self._group and not self._closing:
                await asyncio.sleep(pause)  # those of the next few milliseconds commit together
            last = time.monotonic()
            batch, self._waiting = self._waiting, []
            if not batch:
                continue
            try:
                await retry_transient(lambda: self._record(pool, on_commit, batch),  # noqa: B023
                                      seconds=s.transient_retry_seconds, backoff_max=s.transient_backoff_max_seconds)
            except Exception:  # noqa: BLE001 - the claims lapse and the invitations go again (userprov.invitation_mailing.sql)
                log.exception("email_outcomes_not_recorded", emails=len(batch))

    async def _record(self, pool: asyncpg.Pool, on_commit: OnCommit, batch: Sequence[Outcome]) -> None:
        async with pool.acquire() as conn:
            on_commit(await sql.record(conn, [recorded(o, self._settings) for o in batch]))
        for o in batch:
            if _ends_failed(o, self._settings):
                metrics.EMAILS.labels("failed").inc()


def recorded(outcome: Outcome, settings: Settings) -> sql.Recorded:
    """What an email's outcome makes of its invitation: sent, failed, or back in the queue (after
    a temporary failure, due again after its backoff; not tried, due at once), with its event."""
    i, smtp = outcome.invitation, outcome.smtp
    if smtp.result == "delivered" and outcome.email is not None:
        sent = InvitationSent(
            invitation_id=i.invitation_id, account_id=i.account_id, user_id=i.profile_id, email=i.email, kind=i.kind,
            expires_at=i.expires_at, sent_count=i.sent_count + 1, template=outcome.email.template,
            template_fallback=outcome.email.fallback,
        )
        entry = _entry(outcome, routing.INVITATION_SENT, {"invitation_id": str(i.invitation_id), "kind": i.kind,
                                                          "sent_count": i.sent_count + 1, "template": outcome.email.template})
        return sql.Recorded(i.invitation_id, i.token_hash, "sent", event=_event(sent, outcome), entry=entry)
    if _ends_failed(outcome, settings):
        reason = _failure(outcome, settings)
        failed = InvitationFailed(invitation_id=i.invitation_id, account_id=i.account_id, user_id=i.profile_id, email=i.email,
                                  reason=reason)
        entry = _entry(outcome, routing.INVITATION_FAILED, {"invitation_id": str(i.invitation_id), "kind": i.kind, "reason": reason})
        return sql.Recorded(i.invitation_id, i.token_hash, "failed", reason, event=_event(failed, outcome), entry=entry)
    if smtp.result == "temporary":
        left = settings.smtp_retry_seconds - (i.retried_for or 0.0)  # the last try falls at the window's end
        return sql.Recorded(i.invitation_id, i.token_hash, "again", delay=max(0.0, min(backoff(i.attempts, settings), left)))
    return sql.Recorded(i.invitation_id, i.token_hash, "untried")


def _entry(outcome: Outcome, action: str, changes: dict[str, Any]) -> Entry:
    i = outcome.invitation
    return Entry(i.account_id, action, SYSTEM, i.profile_id, i.email, changes, None, i.origin.correlation_id)


def _event(event: Contract, outcome: Outcome) -> OutgoingMessage:
    origin = outcome.invitation.origin
    return OutgoingMessage.event(event, origin.correlation_id, outcome.trace or origin.trace)


def emit_failed(tx: Transaction, invitation_id: UUID, account_id: str, user_id: UUID, email: str, reason: str, origin: Origin) -> None:
    tx.audit(routing.INVITATION_FAILED, account_id, user_id, email, {"invitation_id": str(invitation_id), "reason": reason},
             origin.correlation_id)
    tx.emit(
        InvitationFailed(invitation_id=invitation_id, account_id=account_id, user_id=user_id, email=email, reason=reason),
        origin.correlation_id,
        origin.trace,
    )


def _ends_failed(outcome: Outcome, settings: Settings) -> bool:
    """A permanent answer, or a temporary one once the retry window since the first try is over."""
    return outcome.smtp.result == "permanent" or (
        outcome.smtp.result == "temporary" and (outcome.invitation.retried_for or 0.0) >= settings.smtp_retry_seconds
    )


def _failure(outcome: Outcome, settings: Settings) -> str:
    reason = outcome.smtp.reason or "undeliverable"
    if outcome.smtp.result == "temporary":
        n = outcome.invitation.attempts
        tried = f"{n} {'try' if n == 1 else 'tries'} in {_duration(outcome.invitation.retried_for or 0.0)}"
        return f"temporary failure, retries exhausted ({tried}): " + reason.removeprefix("temporary failure: ")
    return reason


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next try after `attempts` tries: exponential, bounded, with jitter."""
    pause = min(settings.smtp_backoff_max_seconds, settings.smtp_backoff_seconds * 2 ** max(0, attempts - 1))
    return pause + random.uniform(0, settings.smtp_backoff_seconds)
