from __future__ import annotations

from functools import partial

from contracts import routing
from contracts.events import InvitationIssued
from services.invitation_mailing import handlers
from services.invitation_mailing.mailer import Mailer
from services.runtime.dispatch import Route
from services.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    send = partial(handlers.send_invitation, mailer=Mailer(settings), settings=settings)
    return {routing.INVITATION_ISSUED: Route(InvitationIssued, send)}
