"""The page behind every invitation link: GET and HEAD only show (mail scanners fetch every link
before the person does), a POST with a ticked confirmation acts. It is a client of userprov's
public interface: it asks `invitations.peek`, publishes `invitation.accepted` or
`invitation.declined` on `userprov.responses`, and waits for the event that answered it; all
that a request asks has one deadline, USERPROV_LINKS_WAIT_SECONDS, past which it is a 503."""
from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contracts import routing
from contracts.events import InvitationAccepted, InvitationDeclined
from contracts.queries import InvitationsPeek, InvitationsPeekReply
from userprov.front_doors.access_log import AccessLog
from userprov.front_doors.asgi import ASGIApp, Receive, Scope, Send
from userprov.front_doors.client_limits import ClientLimits, LimitPerClient
from userprov.front_doors.connection import BUS_ERRORS, bus_lifespan, health_routes
from userprov.front_doors.limits import DoorLimits
from userprov.front_doors.lookup_gate import LookupGate
from userprov.links import i18n
from userprov.links.forms import FormKeys, plausible_token
from userprov.links.pages import Page, answered, shown, title
from userprov.public_bus import PublicBus

log = structlog.get_logger()

# the events that answer a response; the page waits for the one with its correlation id
OUTCOME_EVENTS = (routing.USER_ACTIVATED, routing.USER_TRANSFERRED, routing.USER_SUSPENDED, routing.INVITATION_RESPONSE_REJECTED)
FORM_BYTES = 4096  # a form of the page is a few hundred bytes

HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer",  # the token is in the page's URL
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
}


@cache
def _environment(language: str) -> Environment:
    environment = Environment(loader=PackageLoader("userprov.links", "templates"), autoescape=select_autoescape(default=True),
                              extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    environment.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return environment


class InvitationPage:
    def __init__(self, bus: PublicBus, keys: FormKeys, path: str, sign_in_url: str | None, wait_seconds: float,
                 lookups: LookupGate) -> None:
        self._bus = bus
        self._lookups = lookups
        self._keys = keys
        self._path = path
        self._sign_in_url = sign_in_url
        self._wait = wait_seconds

    async def get(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if not plausible_token(token):
            return self._render(request, Page("unknown", 404))
        assert token is not None
        try:
            async with asyncio.timeout(self._wait):
                peeked = await self._peek(token, shared=True)  # a GET only shows: the same link's GETs at once share one peek
        except BUS_ERRORS as error:
            return self._busy(request, error)
        return self._render(request, shown(peeked), token)

    async def post(self, request: Request) -> Response:
        form = await _small_form(request)
        if form is None:
            return self._render(request, Page("form_expired", 413))
        token, action = form.get("token"), form.get("action")
        if not plausible_token(token):
            return self._render(request, Page("unknown", 404))
        assert token is not None
        if (request.headers.get("sec-fetch-site") in ("cross-site", "same-site")
                or not self._keys.valid(form.get("form_key"), token) or action not in ("accept", "decline")):
            return self._render(request, Page("form_expired", 403))
        try:
            async with asyncio.timeout(self._wait):  # the peek, the response and its outcome: one deadline for all
                peeked = await self._peek(token)
                page = shown(peeked)
                if page.state not in ("welcome", "transfer") or (action == "decline" and peeked.kind != "transfer"):
                    return self._render(request, page, token)  # answered already (a second submit): what the first showed
                if form.get("confirm") != "yes":  # what a scanner submitting the form as it stands sends
                    return self._render(request, Page(page.state, 422, peeked, page.moves), token, not_confirmed=action)
                page = await self._respond(token, action, peeked)
            return self._render(request, page, token)
        except BUS_ERRORS as error:
            return self._busy(request, error)

    async def _peek(self, token: str, shared: bool = False) -> InvitationsPeekReply:
        return await self._lookups.ask(token if shared else None, lambda: self._ask_peek(token))

    async def _ask_peek(self, token: str) -> InvitationsPeekReply:
        answer = await self._bus.ask(routing.INVITATIONS_PEEK, InvitationsPeek(token=token), self._wait)
        if answer.type != f"{routing.INVITATIONS_PEEK}.reply":
            return InvitationsPeekReply(status="unknown")  # refused: not a token userprov could have issued
        return InvitationsPeekReply.model_validate_json(answer.body)

    async def _respond(self, token: str, action: str, peeked: InvitationsPeekReply) -> Page:
        if action == "accept":
            received = await self._bus.command(routing.INVITATION_ACCEPTED, InvitationAccepted(token=token), self._wait)
        else:
            received = await self._bus.command(routing.INVITATION_DECLINED, InvitationDeclined(token=token), self._wait)
        return answered(peeked, received.type, received.body) or shown(await self._peek(token))

    def _busy(self, request: Request, error: BaseException) -> Response:
        log.warning("links_userprov_unavailable", error=type(error).__name__)
        response = self._render(request, Page("busy", 503))
        response.headers["retry-after"] = "5"
        return response

    def too_many(self, scope: Scope, _: int) -> Response:
        """An address past its limits: the "try again" page."""
        return self._render(Request(scope), Page("busy", 429))

    def _render(self, request: Request, page: Page, token: str | None = None, not_confirmed: str | None = None) -> Response:
        language = i18n.supported(page.language) or i18n.from_header(request.headers.get("accept-language"))
        environment = _environment(language)
        gettext = i18n.translations(language).gettext
        peeked = page.peeked
        account = peeked.account_name or "" if peeked else ""
        from_account = peeked.from_account_name or "" if peeked else ""
        msgid, parameters = title(page.state, account, from_account)
        email = str(peeked.email) if peeked and peeked.email else ""
        html = environment.get_template("page.html").render(
            lang=language,
            state=page.state,
            title=gettext(msgid) % parameters,
            account=account,
            from_account=from_account,
            first_name=peeked.first_name if peeked else "",
            email=email,
            expires=i18n.date(peeked.expires_at, language) if peeked and peeked.expires_at else "",
            moves=page.moves,
            declinable=bool(peeked and peeked.kind == "transfer"),
            sign_in=self._sign_in(email),
            token=token or "",
            form_key=self._keys.issue(token) if token else "",
            action_url=self._path,
            static=self._path.rstrip("/") + "/static",
            not_confirmed=not_confirmed,
        )
        return HTMLResponse(html, page.status)

    def _sign_in(self, email: str) -> str | None:
        if not self._sign_in_url:
            return None
        return self._sign_in_url + ("&" if "?" in self._sign_in_url else "?") + urlencode({"login_hint": email} if email else {})


async def _small_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or None when it is larger than any form of the page."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > FORM_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            return None
    request._body = body  # noqa: SLF001 - Starlette reads a cached body for request.form()
    form = await request.form(max_fields=8, max_files=0)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def create_app(bus: PublicBus, keys: FormKeys, link_base_url: str, sign_in_url: str | None, wait_seconds: float,
               limits: DoorLimits) -> Starlette:
    path = urlsplit(link_base_url).path or "/"
    page = InvitationPage(bus, keys, path, sign_in_url, wait_seconds, LookupGate(limits.lookups, limits.lookup_wait_seconds))

    async def invitation(request: Request) -> Response:
        return await (page.post(request) if request.method == "POST" else page.get(request))

    static = str(resources.files("userprov.links") / "static")
    app = Starlette(
        routes=[
            Route(path, invitation, methods=["GET", "HEAD", "POST"]),
            Mount(path.rstrip("/") + "/static", StaticFiles(directory=static), name="static"),
            *health_routes(bus),
        ],
        lifespan=bus_lifespan(bus, "links"),
    )
    # a failed authentication: the page of an unknown link (or of none); not a 404 elsewhere (a browser asks for /favicon.ico)
    app.add_middleware(LimitPerClient, limits=ClientLimits(limits.requests, limits.failures),
                       failed=lambda asked, status: status == 404 and asked == path, refuse=page.too_many)
    app.add_middleware(SecurityHeaders, static_prefix=path.rstrip("/") + "/static")  # on the 429 too
    app.add_middleware(AccessLog, event="links_request")
    return app


class SecurityHeaders:
    """On every answer; the page's also `Cache-Control: no-store` (its URL holds a token)."""

    def __init__(self, app: ASGIApp, static_prefix: str) -> None:
        self._app = app
        self._static = static_prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        cached = scope["path"].startswith(self._static)

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                if not cached:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, with_headers)
