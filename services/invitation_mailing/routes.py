from __future__ import annotations

from functools import partial

from contracts import routing
from contracts.events import InvitationIssued
from services.invitation_mailing import handlers
from services.invitation_mailing.mailer import Mailer
from services.runtime.dispatch import Route
from services.sandbox.pool import TemplateSandbox
from services.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    sandbox = TemplateSandbox(settings.sandbox_limits())
    send = partial(handlers.send_invitation, mailer=Mailer(settings), sandbox=sandbox, settings=settings)
    return {routing.INVITATION_ISSUED: Route(InvitationIssued, send)}
