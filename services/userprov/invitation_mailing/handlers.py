"""Handler of the invitation-mailing service: mint a token, email it, record the outcome."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import structlog

from contracts.events import InvitationFailed, InvitationIssued, InvitationSent
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.mailer import Mailer
from userprov.invitation_mailing.rendering import render_invitation
from userprov.masking import mask_email
from userprov.runtime.errors import retry_transient
from userprov.runtime.unit_of_work import UnitOfWork
from userprov.sandbox.pool import TemplateSandbox
from userprov.sandbox.trial import AccountTemplate
from userprov.settings import Settings
from userprov.tokens import hash_token, new_token

log = structlog.get_logger()


async def send_invitation(
    event: InvitationIssued, uow: UnitOfWork, *, mailer: Mailer, sandbox: TemplateSandbox, settings: Settings
) -> None:
    structlog.contextvars.bind_contextvars(invitation_id=str(event.invitation_id))
    token = new_token()
    token_hash = hash_token(token)
    # The hash commits before the email leaves, so the link in it always works; it stays valid
    # beside any later attempt's. A crash after the SMTP server accepted the mail but before
    # `sent` commits sends one more email (with a second working link) once the crashed
    # attempt's claim runs out; once `sent` is recorded, a redelivery sends nothing.
    claimed = await _claim(event, uow, token_hash, settings)
    if claimed is None:
        log.info("invitation_not_sendable")
        async with uow:
            return
    invitation, context = claimed
    email_address = context.email
    template = AccountTemplate(context.subject, context.body) if context.subject is not None and context.body is not None else None
    email = await render_invitation(
        invitation.kind,
        invitation.language,
        {
            "first_name": invitation.first_name,
            "last_name": invitation.last_name,
            "email": email_address,
            "account_name": context.account_name,
            "from_account_name": context.from_account_name,
            "expires_at": sql.expiry_text(invitation.expires_at),
            **links(settings.link_base_url, token),
        },
        template,
        sandbox,
    )
    outcome = await mailer.send(email_address, email)
    log.info("invitation_mailed", to=mask_email(email_address), delivered=outcome.delivered, kind=invitation.kind)

    async def record() -> None:
        async with uow:
            if outcome.delivered:
                sent_count = await sql.mark_sent(uow.conn, event.invitation_id, token_hash)
                if sent_count is not None:
                    uow.emit(
                        InvitationSent(
                            invitation_id=event.invitation_id,
                            account_id=invitation.account_id,
                            user_id=invitation.profile_id,
                            email=email_address,
                            kind=invitation.kind,
                            expires_at=invitation.expires_at,
                            sent_count=sent_count,
                            template=email.template,
                            template_fallback=email.fallback,
                        )
                    )
            elif await sql.mark_failed(uow.conn, event.invitation_id, token_hash, outcome.reason or "undeliverable"):
                uow.emit(
                    InvitationFailed(
                        invitation_id=event.invitation_id,
                        account_id=invitation.account_id,
                        user_id=invitation.profile_id,
                        email=email_address,
                        reason=outcome.reason or "undeliverable",
                    )
                )

    # The email has left: a database fault now must not send it again. Only the recording is
    # retried (a commit whose answer was lost meets the inbox row and counts as done).
    await retry_transient(record, seconds=settings.transient_retry_seconds, backoff_max=settings.transient_backoff_max_seconds)


def links(base_url: str, token: str) -> dict[str, str]:
    separator = "&" if "?" in base_url else "?"
    return {
        "link": f"{base_url}{separator}{urlencode({'token': token})}",
        "accept_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'accept'})}",
        "decline_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'decline'})}",
    }


async def _claim(
    event: InvitationIssued, uow: UnitOfWork, token_hash: bytes, settings: Settings
) -> tuple[sql.ClaimedInvitation, sql.RenderingContext] | None:
    """(invitation, rendering context) once claimed; None when there is nothing to send. While
    another delivery of the same invitation holds it, waits for that one to finish or lapse."""
    while True:
        async with uow.separate_transaction() as conn:
            invitation = await sql.claim_for_sending(
                conn,
                event.invitation_id,
                token_hash,
                settings.welcome_token_ttl_seconds,
                settings.transfer_token_ttl_seconds,
                settings.mailing_claim_seconds,
            )
            if invitation is not None:
                context = await sql.rendering_context(conn, invitation)
                return invitation, context
            held_for = await sql.claim_wait_seconds(conn, event.invitation_id)
        if held_for <= 0:
            return None
        log.info("invitation_held_by_another_attempt", seconds=round(held_for, 1))
        await asyncio.sleep(min(held_for + 0.05, 0.5))
