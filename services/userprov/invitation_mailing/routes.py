"""What the invitation-mailing service handles, by routing key, and its scheduler."""
from __future__ import annotations

from contracts import routing
from userprov.invitation_mailing.mailer import Mailer
from userprov.invitation_mailing.scheduler import MailingScheduler
from userprov.runtime.dispatch import Signal
from userprov.runtime.scheduling import Service
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings


def service(settings: Settings) -> Service:
    mailer = Mailer(settings)
    mailing = MailingScheduler(settings, mailer, TemplateSandbox(settings.sandbox_limits()))
    return Service(handlers={routing.INVITATION_ISSUED: Signal(mailing.notify)}, schedulers=[mailing], circuits=[mailer.circuit])
