"""What the invitation-mailing service handles, by routing key, and its scheduler."""
from __future__ import annotations

import structlog

from contracts import routing
from userprov.front_doors.listening import is_loopback
from userprov.invitation_mailing.mailer import Mailer
from userprov.invitation_mailing.scheduler import MailingScheduler
from userprov.runtime.dispatch import Signal
from userprov.runtime.scheduling import Service
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings

log = structlog.get_logger()


def service(settings: Settings) -> Service:
    if settings.link_base_url is None and not is_loopback(settings.links_host):
        log.warning("link_base_url_unset", links_to=settings.link_base(), consequence="the emails link to this machine's"
                    " page: set USERPROV_LINK_BASE_URL to the page's public URL")
    mailer = Mailer(settings)
    mailing = MailingScheduler(settings, mailer, TemplateSandbox(settings.sandbox_limits()))
    return Service(handlers={routing.INVITATION_ISSUED: Signal(mailing.notify)}, schedulers=[mailing], circuits=[mailer.circuit])
