"""The composition root: the four services and what each handles. Below it, the runtime knows
no service; this module hands it the routes and schedulers of the services a process runs."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from contracts import routing
from userprov.account_lookup.routes import service as account_lookup
from userprov.account_lookup.routes import service_and_decisions as account_lookup_and_decisions
from userprov.invitation_mailing.routes import service as invitation_mailing
from userprov.invitation_mailing.scheduler import MailingScheduler
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
    return _run_of(SERVICES[name](settings))


def _run_of(service: Service) -> ServiceRun:
    return ServiceRun(route_table(service.handlers, service.large), service.schedulers, service.circuits)


def services_of_a_process(settings: Settings, names: Iterable[str]) -> dict[str, Service]:
    """The named services, each built once; account-lookup hands small work straight to the
    mailing scheduler when this process runs both."""
    wired = (routing.ACCOUNT_LOOKUP, routing.USER_CREATION)
    built = {name: SERVICES[name](settings) for name in names if name not in wired}
    decide_here = None
    if routing.ACCOUNT_LOOKUP in names:
        mailing = built.get(routing.INVITATION_MAILING)
        local = next((s for s in mailing.schedulers if isinstance(s, MailingScheduler)), None) if mailing else None
        built[routing.ACCOUNT_LOOKUP], decide_here = account_lookup_and_decisions(settings, local)
    if routing.USER_CREATION in names:
        built[routing.USER_CREATION] = user_creation(settings, decide_here)
    return {name: built[name] for name in names}


async def run(settings: Settings, services: Iterable[str]) -> int:
    """Runs the named services in this process until SIGTERM; the exit status."""
    names = list(services)
    return await run_worker(settings, {name: _run_of(s) for name, s in services_of_a_process(settings, names).items()})
