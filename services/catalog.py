"""The four services by name, each with the routes it handles."""
from __future__ import annotations

from collections.abc import Callable

from contracts import routing
from services.account_lookup.routes import routes as account_lookup
from services.invitation_mailing.routes import routes as invitation_mailing
from services.invitation_response.routes import routes as invitation_response
from services.runtime.dispatch import Route
from services.settings import Settings
from services.user_creation.routes import routes as user_creation

ROUTES: dict[str, Callable[[Settings], dict[str, Route]]] = {
    routing.USER_CREATION: user_creation,
    routing.ACCOUNT_LOOKUP: account_lookup,
    routing.INVITATION_MAILING: invitation_mailing,
    routing.INVITATION_RESPONSE: invitation_response,
}
