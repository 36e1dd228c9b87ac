"""Handler of the invitation-mailing service: mint tokens, email them, record the outcomes, a
chunk of invitations at a time."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Protocol
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import structlog

from contracts.base import Contract
from contracts.events import InvitationFailed, InvitationIssued, InvitationSent
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.mailer import Mailer, OutgoingEmail, SmtpOutcome
from userprov.invitation_mailing.rendering import RenderedEmail, render_invitation
from userprov.runtime.errors import retry_transient
from userprov.runtime.unit_of_work import UnitOfWork
from userprov.sandbox.pool import TemplateSandbox
from userprov.sandbox.trial import AccountTemplate
from userprov.settings import Settings
from userprov.tokens import hash_token, new_token

log = structlog.get_logger()

CLAIM_SAFETY_SECONDS = 1.0  # between the last try's end and the claim's, for clocks and commits


async def send_invitations(
    event: InvitationIssued, uow: UnitOfWork, *, mailer: Mailer, sandbox: TemplateSandbox, settings: Settings
) -> None:
    """Each round claims what is left of the chunk, emails it and records each outcome at once.

    A token's hash commits before the email that carries it leaves, so every link sent works; it
    stays valid beside any later attempt's. After the SMTP server accepted an email only the
    recording is retried, never the send. A crash between the two sends one more email (with a
    second working link) once the claim runs out; once `sent` is recorded, nothing is sent again.
    Emails that could not be tried to the end within the claim are released and go in the next
    round; tries add up across rounds to `smtp_attempts` per email."""
    pending = list(dict.fromkeys(i.invitation_id for i in event.invitations))
    structlog.contextvars.bind_contextvars(invitations=len(pending))
    tries: Counter[Hashable] = Counter()
    while pending:
        tokens = {invitation_id: new_token() for invitation_id in pending}
        attempts = {invitation_id: hash_token(token) for invitation_id, token in tokens.items()}
        deadline = time.monotonic() + settings.mailing_claim_seconds - CLAIM_SAFETY_SECONDS
        claimed, templates, others, held_for = await _claim(uow, attempts, settings)
        emails = await asyncio.gather(*(_render(i, tokens[i.invitation_id], templates, sandbox, settings) for i in claimed))
        outcomes = await mailer.send_many(
            [OutgoingEmail(i.invitation_id, i.email, email) for i, email in zip(claimed, emails, strict=True)], deadline, tries
        )
        unfinished = [i.invitation_id for i in claimed if i.invitation_id not in outcomes]
        last_round = not unfinished and held_for <= 0  # nothing to try again, nothing to wait for

        async def record() -> None:
            if last_round:  # the outcomes and the message's inbox row commit together
                async with uow:
                    await _record(uow, claimed, emails, outcomes)
            else:
                async with uow.separate_transaction() as tx:
                    await _record(tx, claimed, emails, outcomes)

        await retry_transient(record, seconds=settings.transient_retry_seconds, backoff_max=settings.transient_backoff_max_seconds)
        log.info(
            "invitations_mailed",
            delivered=sum(o.delivered for o in outcomes.values()),
            failed=sum(not o.delivered for o in outcomes.values()),
            unfinished=len(unfinished),
        )
        pending = unfinished + await _wait_for_other_attempts(others, held_for)
    if not uow.committed:
        async with uow:  # every invitation of the chunk is sent, failed, or not ours to send
            pass


async def _claim(
    uow: UnitOfWork, attempts: dict[UUID, bytes], settings: Settings
) -> tuple[list[sql.ClaimedInvitation], dict[tuple[str, str], sql.AccountTemplateSource], list[UUID], float]:
    """The invitations claimed, their accounts' templates, the rest, and how long other
    attempts still hold any of the rest (0 when none is held: the rest is not ours to send). One transaction, so one `now()`: an invitation that was held at the
    claim is still seen as held, never as lapsed and so wrongly as done."""
    async with uow.separate_transaction() as tx:
        claimed = await sql.claim_for_sending(
            tx.conn,
            attempts,
            settings.welcome_token_ttl_seconds,
            settings.transfer_token_ttl_seconds,
            settings.mailing_claim_seconds,
        )
        claimed_ids = {i.invitation_id for i in claimed}
        others = [invitation_id for invitation_id in attempts if invitation_id not in claimed_ids]
        held_for = await sql.held_seconds(tx.conn, others) if others else 0.0
        return claimed, await sql.account_templates(tx.conn, claimed), others, held_for


async def _wait_for_other_attempts(invitation_ids: Sequence[UUID], held_for: float) -> list[UUID]:
    """Those of `invitation_ids` to try again, after waiting a little for another delivery that
    holds some of them to finish or lapse; none when none is held (sent, revoked or ended)."""
    if not invitation_ids or held_for <= 0:
        return []
    log.info("invitations_held_by_another_attempt", seconds=round(held_for, 1))
    await asyncio.sleep(min(held_for + 0.05, 0.5))
    return list(invitation_ids)


async def _render(
    invitation: sql.ClaimedInvitation,
    token: str,
    templates: dict[tuple[str, str], sql.AccountTemplateSource],
    sandbox: TemplateSandbox,
    settings: Settings,
) -> RenderedEmail:
    own = templates.get((invitation.account_id, invitation.language))
    return await render_invitation(
        invitation.kind,
        invitation.language,
        {
            "first_name": invitation.first_name,
            "last_name": invitation.last_name,
            "email": invitation.email,
            "account_name": invitation.account_name,
            "from_account_name": invitation.from_account_name,
            "expires_at": sql.expiry_text(invitation.expires_at),
            **links(settings.link_base_url, token),
        },
        AccountTemplate(own.subject, own.body) if own is not None else None,
        sandbox,
    )


class _Transaction(Protocol):
    @property
    def conn(self) -> asyncpg.Connection: ...

    def emit(self, event: Contract) -> None: ...


async def _record(
    tx: _Transaction,
    claimed: Sequence[sql.ClaimedInvitation],
    emails: Sequence[RenderedEmail],
    outcomes: dict[Hashable, SmtpOutcome],
) -> None:
    """Sent and failed with their events, and the unfinished given back, in the transaction `tx`.
    Safe to repeat: each change is conditional on this attempt still holding the invitation."""
    delivered = {i.invitation_id: i.token_hash for i in claimed if (o := outcomes.get(i.invitation_id)) and o.delivered}
    failed = {
        i.invitation_id: (i.token_hash, o.reason or "undeliverable")
        for i in claimed
        if (o := outcomes.get(i.invitation_id)) and not o.delivered
    }
    unfinished = {i.invitation_id: i.token_hash for i in claimed if i.invitation_id not in outcomes}
    sent_counts = await sql.mark_sent(tx.conn, delivered) if delivered else {}
    now_failed = await sql.mark_failed(tx.conn, failed) if failed else set()
    if unfinished:
        await sql.release(tx.conn, unfinished)
    for invitation, email in zip(claimed, emails, strict=True):
        if invitation.invitation_id in sent_counts:
            tx.emit(
                InvitationSent(
                    invitation_id=invitation.invitation_id,
                    account_id=invitation.account_id,
                    user_id=invitation.profile_id,
                    email=invitation.email,
                    kind=invitation.kind,
                    expires_at=invitation.expires_at,
                    sent_count=sent_counts[invitation.invitation_id],
                    template=email.template,
                    template_fallback=email.fallback,
                )
            )
        elif invitation.invitation_id in now_failed:
            tx.emit(
                InvitationFailed(
                    invitation_id=invitation.invitation_id,
                    account_id=invitation.account_id,
                    user_id=invitation.profile_id,
                    email=invitation.email,
                    reason=failed[invitation.invitation_id][1],
                )
            )


def links(base_url: str, token: str) -> dict[str, str]:
    separator = "&" if "?" in base_url else "?"
    return {
        "link": f"{base_url}{separator}{urlencode({'token': token})}",
        "accept_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'accept'})}",
        "decline_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'decline'})}",
    }
