from __future__ import annotations

from functools import partial

from contracts import routing
from contracts.events import InvitationIssued
from userprov.invitation_mailing import handlers
from userprov.invitation_mailing.mailer import Mailer
from userprov.runtime.dispatch import Route
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    sandbox = TemplateSandbox(settings.sandbox_limits())
    send = partial(handlers.send_invitation, mailer=Mailer(settings), sandbox=sandbox, settings=settings)
    return {routing.INVITATION_ISSUED: Route(InvitationIssued, send)}
