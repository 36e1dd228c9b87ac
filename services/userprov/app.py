"""The composition root: the four services and what each handles. Below it, the runtime knows
no service; this module hands it the routes of the services a process runs."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from contracts import routing
from userprov.account_lookup.routes import handlers_for as account_lookup
from userprov.invitation_mailing.routes import handlers_for as invitation_mailing
from userprov.invitation_response.routes import handlers_for as invitation_response
from userprov.runtime.dispatch import Handler, QueryHandler, Route, route_table
from userprov.runtime.worker import run_worker
from userprov.settings import Settings
from userprov.user_creation.routes import handlers_for as user_creation

SERVICES: dict[str, Callable[[Settings], Mapping[str, Handler | QueryHandler]]] = {
    routing.USER_CREATION: user_creation,
    routing.ACCOUNT_LOOKUP: account_lookup,
    routing.INVITATION_MAILING: invitation_mailing,
    routing.INVITATION_RESPONSE: invitation_response,
}


def routes(settings: Settings, service: str) -> dict[str, Route]:
    return route_table(SERVICES[service](settings))


async def run(settings: Settings, services: Iterable[str]) -> int:
    """Runs the named services in this process until SIGTERM; the exit status."""
    return await run_worker(settings, {name: routes(settings, name) for name in services})
