"""The four services by name, each with the routes it handles."""
from __future__ import annotations

from collections.abc import Callable

from contracts import routing
from userprov.account_lookup.routes import routes as account_lookup
from userprov.invitation_mailing.routes import routes as invitation_mailing
from userprov.invitation_response.routes import routes as invitation_response
from userprov.runtime.dispatch import Route
from userprov.settings import Settings
from userprov.user_creation.routes import routes as user_creation

ROUTES: dict[str, Callable[[Settings], dict[str, Route]]] = {
    routing.USER_CREATION: user_creation,
    routing.ACCOUNT_LOOKUP: account_lookup,
    routing.INVITATION_MAILING: invitation_mailing,
    routing.INVITATION_RESPONSE: invitation_response,
}
