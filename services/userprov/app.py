"""The composition root: the four services and what each handles. Below it, the runtime knows
no service; this module hands it the routes and schedulers of the services a process runs."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from contracts import routing
from userprov.account_lookup.routes import service as account_lookup
from userprov.invitation_mailing.routes import service as invitation_mailing
from userprov.invitation_response.routes import service as invitation_response
from userprov.runtime.dispatch import route_table
from userprov.runtime.scheduling import Service
from userprov.runtime.worker import ServiceRun, run_worker
from userprov.settings import Settings
from userprov.user_creation.routes import service as user_creation

SERVICES: dict[str, Callable[[Settings], Service]] = {
    routing.USER_CREATION: user_creation,
    routing.ACCOUNT_LOOKUP: account_lookup,
    routing.INVITATION_MAILING: invitation_mailing,
    routing.INVITATION_RESPONSE: invitation_response,
}


def service_run(settings: Settings, name: str) -> ServiceRun:
    service = SERVICES[name](settings)
    return ServiceRun(route_table(service.handlers), service.schedulers, service.circuits)


async def run(settings: Settings, services: Iterable[str]) -> int:
    """Runs the named services in this process until SIGTERM; the exit status."""
    return await run_worker(settings, {name: service_run(settings, name) for name in services})
