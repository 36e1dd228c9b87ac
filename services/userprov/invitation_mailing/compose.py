"""The email of one claimed invitation: its links with the claim's token, in the person's
language, from the account's own template when it has a usable one."""
from __future__ import annotations

from urllib.parse import urlencode

from userprov.invitation_mailing import sql
from userprov.invitation_mailing.rendering import RenderedEmail, render_invitation
from userprov.sandbox.pool import TemplateSandbox
from userprov.sandbox.trial import AccountTemplate


async def compose(invitation: sql.ClaimedInvitation, token: str, link_base_url: str, sandbox: TemplateSandbox) -> RenderedEmail:
    own = None
    if invitation.template_subject is not None and invitation.template_body is not None:
        own = AccountTemplate(invitation.template_subject, invitation.template_body)
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
            **links(link_base_url, token),
        },
        own,
        sandbox,
    )


def links(base_url: str, token: str) -> dict[str, str]:
    separator = "&" if "?" in base_url else "?"
    return {
        "link": f"{base_url}{separator}{urlencode({'token': token})}",
        "accept_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'accept'})}",
        "decline_link": f"{base_url}{separator}{urlencode({'token': token, 'action': 'decline'})}",
    }
