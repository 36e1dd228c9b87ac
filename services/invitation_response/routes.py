from __future__ import annotations

from contracts import routing
from contracts.events import InvitationAccepted, InvitationDeclined
from services.invitation_response import handlers
from services.runtime.dispatch import Route
from services.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    return {
        routing.INVITATION_ACCEPTED: Route(InvitationAccepted, handlers.accept),
        routing.INVITATION_DECLINED: Route(InvitationDeclined, handlers.decline),
    }
