"""What the invitation-mailing service handles, by routing key."""
from __future__ import annotations

from functools import partial

from contracts import routing
from userprov.invitation_mailing import handlers
from userprov.invitation_mailing.mailer import Mailer
from userprov.runtime.dispatch import Handler
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings


def handlers_for(settings: Settings) -> dict[str, Handler]:
    sandbox = TemplateSandbox(settings.sandbox_limits())
    return {
        routing.INVITATION_ISSUED: partial(handlers.send_invitations, mailer=Mailer(settings), sandbox=sandbox, settings=settings),
    }
