"""Account welcome templates, and the trial render that decides at `accounts.upsert` whether
one can be used: shared by the service that stores templates and the one that sends them."""
from __future__ import annotations

from dataclasses import dataclass

from userprov.invitation_mailing.html_part import anchor, text_to_html
from userprov.sandbox.pool import RenderFailed, TemplateSandbox


@dataclass(frozen=True)
class AccountTemplate:
    subject: str
    body: str


async def trial_errors(sandbox: TemplateSandbox, template: AccountTemplate, account_name: str) -> dict[str, tuple[str, str]]:
    """What keeps an account template from being usable, by part: (code, message); empty when
    it renders within the sandbox's bounds against the longest values a member can have."""
    sample = sample_context(account_name)
    try:
        parts = await sandbox.render({"subject": template.subject, "body": template.body}, sample)
    except RenderFailed as failure:
        return {failure.part or "body": (failure.code, failure.message)}
    if sample["link"] not in parts["body"]:
        return {"body": ("link_missing", "the body must contain {{ link }}")}
    if anchor(sample["link"]) not in text_to_html(parts["subject"], parts["body"], [sample["link"]]):
        return {"body": ("link_missing", "the link does not become a working link in the email's HTML part")}
    return {}


def sample_context(account_name: str) -> dict[str, str]:
    """A member with the longest names and email allowed, and a link as long as a real one."""
    token = "T" * 43
    link = f"https://links.example.com/invitation/with/a/long/path?token={token}"
    return {
        "first_name": "Ŵ" * 32,
        "last_name": "Ŵ" * 32,
        "email": "e" * 64 + "@" + "d" * 50 + ".example.com",
        "account_name": account_name,
        "from_account_name": account_name,
        "expires_at": "2026-12-31 23:59 UTC",
        "link": link,
        "accept_link": link + "&action=accept",
        "decline_link": link + "&action=decline",
    }
