from __future__ import annotations

from contracts import routing
from contracts.events import InvitationAccepted, InvitationDeclined
from userprov.invitation_response import handlers
from userprov.runtime.dispatch import Route
from userprov.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    return {
        routing.INVITATION_ACCEPTED: Route(InvitationAccepted, handlers.accept),
        routing.INVITATION_DECLINED: Route(InvitationDeclined, handlers.decline),
    }
