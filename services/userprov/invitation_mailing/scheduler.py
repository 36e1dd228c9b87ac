"""The invitation-mailing scheduler: takes invitations waiting in PostgreSQL in turn order across
accounts (userprov.turns), a few at a time, and emails each on its own pooled SMTP connection.

Each process keeps a few emails per SMTP connection in hand (HAND_HIGH): those being sent and
those claimed to follow, which leave round-robin across accounts (userprov.invitation_mailing.hand).
It claims again once it holds HAND_LOW per connection, so a claim takes several invitations, and
another account's invitation waits for at most one email of each other account in hand, however
large their backlog. An invitation is checked still open just before its
email leaves when its claim is more than a moment old (a removal or a resend revokes it), and
each outcome is recorded as soon as it is known (userprov.invitation_mailing.outcomes)."""
from __future__ import annotations

import asyncio
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import asyncpg
import structlog

from contracts import routing
from contracts.events import InvitationIssued
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.compose import compose
from userprov.invitation_mailing.hand import Hand
from userprov.invitation_mailing.mailer import Mailer, SmtpOutcome
from userprov.invitation_mailing.outcomes import Outcome, Recorder, emit_failed
from userprov.runtime import metrics, tracing
from userprov.runtime.aio import first_of
from userprov.runtime.errors import is_transient
from userprov.runtime.priority import priority
from userprov.runtime.scheduling import ExpressQueue, Offered, Wakeup
from userprov.runtime.unit_of_work import OnCommit, transaction
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings
from userprov.tokens import hash_token, new_token

log = structlog.get_logger()


HAND_LOW, HAND_HIGH = 2, 6  # emails in hand per SMTP connection
RECHECK_AFTER_SECONDS = 0.25  # a claim older than this is checked still open right before its email leaves
# between a try's latest end and the lease's, for clocks and commits (USERPROV_CLAIM_SLACK_SECONDS exceeds it)
LEASE_SAFETY_SECONDS = 1.0


@dataclass(frozen=True)
class Claim:
    invitation: sql.ClaimedInvitation
    token: str
    at: float  # monotonic time of the claim
    express: bool = False

    @property
    def account_id(self) -> str:
        return self.invitation.account_id


def lease_seconds(settings: Settings) -> float:
    """How long a claim holds an invitation: one render, one SMTP try and a margin
    (USERPROV_CLAIM_SLACK_SECONDS). An email that waited in hand so long that its try could end
    after the lease is given back untried (`latest_start`), so a crashed process's claims lapse
    soon and are sent by another."""
    return settings.template_timeout_seconds + settings.smtp_timeout_seconds + settings.claim_slack_seconds


class MailingScheduler:
    name = "invitation-mailing"

    def __init__(self, settings: Settings, mailer: Mailer, sandbox: TemplateSandbox) -> None:
        self._settings = settings
        self._mailer = mailer
        self._sandbox = sandbox
        self._lease = lease_seconds(settings)
        self._slots = settings.smtp_connections
        self._takes_batches = settings.lane.takes_batches  # the interactive lane sends small work only
        self._low, self._high = HAND_LOW * self._slots, HAND_HIGH * self._slots  # claim when at most low are in hand, up to high
        self._ready: Hand[Claim] = Hand()  # claimed, waiting for a connection
        self._sending: set[asyncio.Task[None]] = set()
        self._recorder = Recorder(settings)
        self._hand_freed = asyncio.Event()
        self._stopping = False
        self._next_sweep = 0.0
        self._express = ExpressQueue(self.name)  # announced by small signals: claimed by id, sent next
        self._express_in_hand = 0
        self._express_event = asyncio.Event()
        self._express_announced = False
        self._waiting_for_priority = False
        self._in_flight: dict[UUID, Claim] = {}  # taken from the hand: rendering or sending
        self._renewed: dict[UUID, float] = {}  # when a claim's lease was last extended (monotonic)
        self._pool: asyncpg.Pool | None = None  # while running
        self.wakeup = Wakeup(settings.scheduler_poll_seconds)

    def notify(self, signal: InvitationIssued | None = None) -> bool:
        """True when the express lane took the work (small work; it wakes the regular claims if it
        fails); else the regular claims are woken and take it, here or in another process."""
        ids = [i.invitation_id for i in signal.invitations] if signal is not None else []
        offered = self._express.offer(ids)
        if offered is Offered.QUEUED:
            self._express_event.set()
            if not self._express_announced:  # bulk work in this process holds until the express claim is made
                self._express_announced = True
                priority.announce()
        if offered is Offered.REFUSED:
            self.wakeup.set()
            return False
        return True

    def stop(self) -> None:
        self._stopping = True
        self.wakeup.set()
        self._hand_freed.set()
        self._express_event.set()

    async def oldest_waiting(self, conn: asyncpg.Connection) -> float:
        return await sql.oldest_waiting(conn)

    @property
    def _in_hand(self) -> int:
        return len(self._ready) + len(self._sending)

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        self._pool = pool
        recording = asyncio.create_task(self._recorder.run(pool, on_commit), name="email-outcomes")
        express = asyncio.create_task(self._claim_express_until_stopped(pool), name="express-claims")
        renewing = asyncio.create_task(self._renew_leases_until_stopped(pool), name="claim-leases")
        try:
            await self._claim_and_send(pool, on_commit)
        finally:
            renewing.cancel()
            await asyncio.gather(express, renewing, return_exceptions=True)
            await asyncio.gather(*self._sending, return_exceptions=True)
            for claim in self._ready.drain():  # claimed, never tried: due again at once for the other processes
                self._recorder.add(Outcome(claim.invitation, SmtpOutcome("not_tried", "the worker is stopping")))
            self._recorder.close()
            await recording

    async def _claim_and_send(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        more_waiting, failures = self._takes_batches, 0
        smtp = self._mailer.circuit
        while not self._stopping:
            if time.monotonic() >= self._next_sweep:
                await self._sweep(pool, on_commit)
            if smtp.is_open:  # the server is down: what waits, waits in PostgreSQL, its tries untouched
                await first_of(smtp.wait_closed(), self.wakeup.wait())
                continue
            if more_waiting and self._in_hand <= self._low:
                await priority.bulk_step()
                wanted = self._high - self._in_hand
                try:
                    claims = await self._claim(pool, wanted)
                except Exception as error:  # noqa: BLE001 - the scheduler outlives any fault
                    failures += 1
                    log.warning("invitation_claim_failed", error=repr(error), transient=is_transient(error), failures=failures)
                    await self.wakeup.wait(min(0.1 * 2**failures, self._settings.transient_backoff_max_seconds))
                    continue
                failures = 0
                self._ready.add(claims)
                self._start_sends(pool)
                more_waiting = bool(claims)  # fewer than wanted may only mean that another process took them
                continue
            self._hand_freed.clear()
            if more_waiting:
                await first_of(self._hand_freed.wait(), self.wakeup.wait())
            else:
                await self.wakeup.wait()
                more_waiting = self._takes_batches

    async def _renew_leases_until_stopped(self, pool: asyncpg.Pool) -> None:
        """While this process lives, the claims it holds do not lapse, however long they wait for
        a renderer or a connection (a slow template): every quarter lease their leases are
        extended. A process that dies stops renewing, and its claims lapse after one lease."""
        interval = max(self._lease / 4, 0.5)
        while not self._stopping:
            await asyncio.sleep(interval)
            held = {**{c.invitation.invitation_id: c for c in self._ready.items()}, **self._in_flight}
            if not held:
                continue
            renewed_at = time.monotonic()  # before the statement: the lease runs from no later than this
            try:
                async with pool.acquire() as conn:
                    renewed = await sql.renew_claims(conn, {i: c.invitation.token_hash for i, c in held.items()}, self._lease)
            except Exception as error:  # noqa: BLE001 - the claims may lapse then, and go again (counted)
                log.warning("claim_leases_not_renewed", error=repr(error), claims=len(held))
                continue
            for invitation_id in renewed:
                self._renewed[invitation_id] = renewed_at
            if len(renewed) < len(held):
                # revoked, or lapsed and maybe claimed by another process: their leases are not
                # extended here, and a send not yet started finds them gone when it checks
                log.info("claims_no_longer_held", claims=len(held) - len(renewed))

    async def _claim_express_until_stopped(self, pool: asyncpg.Pool) -> None:
        """The express lane, beside the regular claims (never waiting for one in progress)."""
        try:
            while not self._stopping:
                await self._express_event.wait()
                self._express_event.clear()
                while self._express and self._express_in_hand < self._slots and not self._stopping:
                    if self._mailer.circuit.is_open:
                        self._express_event.clear()  # what is announced meanwhile stays in the express queue
                        await first_of(self._mailer.circuit.wait_closed(), self._express_event.wait())
                        continue
                    await self._claim_express(pool)
        finally:
            if self._express_announced:
                self._express_announced = False
                priority.done()

    async def _claim_express(self, pool: asyncpg.Pool) -> None:
        """The invitations of small signals, claimed by id and sent before the rest of the hand:
        someone who added a few people never waits behind another account's batch. At most one
        per connection at a time, so a flood of small adds leaves the batches their share; what
        is not claimed here waits its turn in the queue."""
        these = self._express.take(self._slots - self._express_in_hand)
        try:
            claims = await self._claim(pool, len(these), these, express=True)
        except Exception as error:  # noqa: BLE001 - the regular claims take them in turn
            log.warning("express_claim_failed", error=repr(error))
            self.wakeup.set()
            return
        finally:
            if not len(self._express) and self._express_announced:
                self._express_announced = False
                priority.done()
        # one not claimed is sent or held by another claim already, or not due yet (the poll finds it then)
        self._express_in_hand += len(claims)
        self._ready.add(claims, first=True)
        self._start_sends(pool)

    async def claim_in(self, conn: asyncpg.Connection, invitation_ids: list[UUID]) -> list[Claim] | None:
        """Small work decided in this process: its invitations claimed in the transaction that
        issued them (one commit less before the email), to be handed over by `hand` once it
        commits. None when they should wait their turn instead (the express lane is full, the SMTP
        server down, or the scheduler not running)."""
        if self._pool is None or self._stopping or self._mailer.circuit.is_open:
            return None
        if not 0 < len(invitation_ids) <= self._slots - self._express_in_hand:
            return None
        return await self._claim_on(conn, len(invitation_ids), invitation_ids, express=True)

    def hand(self, claims: list[Claim]) -> None:
        """Claims committed by `claim_in`'s transaction: sent before the rest of the hand. Their
        signal, delivered after this, finds them taken."""
        self._express.seen([c.invitation.invitation_id for c in claims])
        if self._pool is None or self._stopping:
            return  # the claims lapse, and the invitations go again
        self._express_in_hand += len(claims)
        self._ready.add(claims, first=True)
        self._start_sends(self._pool)

    async def _claim(self, pool: asyncpg.Pool, wanted: int, these: list[UUID] | None = None, express: bool = False) -> list[Claim]:
        async with pool.acquire() as conn:
            return await self._claim_on(conn, wanted, these, express)

    async def _claim_on(self, conn: asyncpg.Connection, wanted: int, these: list[UUID] | None, express: bool) -> list[Claim]:
        s = self._settings
        tokens = [new_token() for _ in range(wanted)]
        by_hash = {hash_token(t): t for t in tokens}
        claimed = await sql.claim(conn, list(by_hash), s.welcome_token_ttl_seconds, s.transfer_token_ttl_seconds, self._lease, these)
        now = time.monotonic()
        return [Claim(i, by_hash[i.token_hash], now, express) for i in claimed]

    def _start_sends(self, pool: asyncpg.Pool, held: bool = False) -> None:
        """Starts sends while connections are free: one connection beyond USERPROV_SMTP_CONNECTIONS
        is kept for small work, so that it never waits for a batch's email to finish. A batch's
        email waits for interactive work in this process, once and briefly (`held`: it has)."""
        while self._ready and not self._stopping:
            express = self._ready.peek().express
            if len(self._sending) >= self._slots + express:
                return
            if priority.busy and not express and not held:
                if not self._waiting_for_priority:
                    self._waiting_for_priority = True
                    priority.when_clear(partial(self._resume_sends, pool))
                return
            claim = self._ready.take()
            self._in_flight[claim.invitation.invitation_id] = claim
            task = asyncio.create_task(self._send(pool, claim))
            self._sending.add(task)
            task.add_done_callback(partial(self._sent, pool, claim))

    def _resume_sends(self, pool: asyncpg.Pool) -> None:
        self._waiting_for_priority = False
        self._start_sends(pool, held=True)

    def _sent(self, pool: asyncpg.Pool, claim: Claim, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        express = claim.express
        self._in_flight.pop(claim.invitation.invitation_id, None)
        self._renewed.pop(claim.invitation.invitation_id, None)
        self._express_in_hand -= express
        if express and self._express:  # room again in the express lane for what waits there
            self._express_event.set()
        self._start_sends(pool)
        if self._in_hand <= self._low:
            self._hand_freed.set()

    async def _send(self, pool: asyncpg.Pool, claim: Claim) -> None:
        invitation, email = claim.invitation, None
        with (
            priority.interactive() if claim.express else nullcontext(),
            tracing.working(routing.INVITATION_MAILING, "send invitation", invitation.origin.trace) as trace,
        ):
            try:
                email = await compose(invitation, claim.token, self._settings.link_base(), self._sandbox)
                if time.monotonic() - claim.at > RECHECK_AFTER_SECONDS and not await self._still_open(pool, claim):
                    log.info("invitation_revoked_before_sending")
                    return  # revoked meanwhile: the revocation already took it from the claim
                leased_at = max(claim.at, self._renewed.get(invitation.invitation_id, claim.at))
                latest_start = leased_at + self._lease - self._settings.smtp_timeout_seconds - LEASE_SAFETY_SECONDS
                outcome = await self._mailer.send(invitation.email, email, latest_start)
            except Exception as error:  # noqa: BLE001 - whatever it was, the invitation goes again, as a try that counts
                log.exception("email_not_sent")
                outcome = SmtpOutcome("temporary", f"temporary failure: {type(error).__name__}")
        if outcome.delivered:
            metrics.EMAILS.labels("delivered").inc()
        self._recorder.add(Outcome(invitation, outcome, email, trace))

    async def _still_open(self, pool: asyncpg.Pool, claim: Claim) -> bool:
        async with pool.acquire() as conn:
            return bool(await sql.still_open(conn, {claim.invitation.invitation_id: claim.invitation.token_hash}))

    async def _sweep(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        """Claims whose holder died go back in the queue (or fail, tried too often)."""
        self._next_sweep = time.monotonic() + min(self._lease / 4, 5.0)
        try:
            async with transaction(pool, on_commit) as tx:
                for lapsed in await sql.end_lapsed_claims(tx.conn, self._settings.smtp_attempts):
                    metrics.EMAILS.labels("failed").inc()
                    emit_failed(tx, lapsed.invitation_id, lapsed.account_id, lapsed.profile_id, lapsed.email,
                                sql.WORKER_STOPPED, lapsed.origin)
        except Exception as error:  # noqa: BLE001 - tried again at the next sweep
            log.warning("lapsed_claims_not_swept", error=repr(error))

