"""What the invitation-response service handles, by routing key."""
from __future__ import annotations

from contracts import routing
from userprov.invitation_response import handlers
from userprov.runtime.dispatch import Handler
from userprov.settings import Settings


def handlers_for(settings: Settings) -> dict[str, Handler]:
    return {
        routing.INVITATION_ACCEPTED: handlers.accept,
        routing.INVITATION_DECLINED: handlers.decline,
    }
