"""What the invitation-response service handles, by routing key."""
from __future__ import annotations

from contracts import routing
from userprov.invitation_response import handlers
from userprov.runtime.scheduling import Service
from userprov.settings import Settings


def service(settings: Settings) -> Service:
    return Service(handlers={
        routing.INVITATION_ACCEPTED: handlers.accept,
        routing.INVITATION_DECLINED: handlers.decline,
    })
