"""`userprov demo`: runs the whole system on this machine and tells its story.

Starts a mail catcher writing each email to a folder, the four workers and the invitation page
(`userprov links`); creates an account and adds a pasted list; a person accepts her welcome
through the page in a headless browser; another account invites her, she is active, so it is a
transfer: the page shows what moves and she accepts; another person declines a transfer; an
invitation is resent and a member removed; and it prints the page's URL of an open invitation,
for a person to click while the page keeps running, until Ctrl-C (in a terminal, or with
--keep-running); otherwise everything stops when the story ends, and no link is printed."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from playwright.async_api import Browser

from contracts import routing
from userprov.db.connection import drop_database
from userprov.db.migrate import migrate
from userprov.db.urls import database_name, with_database
from userprov.settings import Settings
from userprov_devtools.browser import answer, headless_chromium, state
from userprov_devtools.bus_client import BusClient
from userprov_devtools.mail_catcher import CatchingHandler, start_mail_catcher, text_part
from userprov_devtools.waiting import eventually

PASTED = """Ada Lovelace ada@example.com; Alan Mathison Turing alan@example.com
Grace\tHopper Murray\tgrace@example.com
Ada Again ADA@example.com; Nobody broken-address; Émilie du Châtelet emilie@example.com"""
SIGN_IN = "https://signin.example.com/login"  # where "Create your password" leads, unless USERPROV_LINKS_SIGN_IN_URL says


async def run_demo(settings: Settings, mail_folder: Path, keep_running: bool | None = None) -> int:
    """Each run has a database of its own (`<database>_demo`, made anew): people of an earlier
    run must not turn this run's welcome into a transfer. `keep_running`: whether the workers
    and the page stay up after the story, until SIGINT or SIGTERM (None: when stdin is a terminal)."""
    database_url = demo_database_url(settings.database_url)
    await drop_database(database_url)
    await migrate(database_url, create_database=True)
    settings = settings.model_copy(update={"database_url": database_url})
    for old in mail_folder.glob("*.eml"):
        old.unlink()
    catcher = CatchingHandler(folder=mail_folder)
    controller = start_mail_catcher(settings.smtp_host, settings.smtp_port, catcher)
    page_base = settings.local_link_base()  # this run's page, whatever USERPROV_LINK_BASE_URL says
    env = {**os.environ, "USERPROV_LOG_LEVEL": "WARNING", "USERPROV_DATABASE_URL": database_url, "USERPROV_LINK_BASE_URL": page_base,
           "USERPROV_LINKS_SIGN_IN_URL": settings.links_sign_in_url or SIGN_IN,
           "USERPROV_RESEND_COOLDOWN_SECONDS": "0"}  # the demo resends an invitation seconds after the first
    processes = [subprocess.Popen([sys.executable, "-m", "userprov", "run"], env=env),
                 subprocess.Popen([sys.executable, "-m", "userprov", "links"], env=env)]
    bus = BusClient(settings.amqp_url)
    try:
        await bus.start()
        await bus.wait_for_workers()
        await eventually(lambda: _ready(page_base), 30, what="the invitation page")
        async with headless_chromium() as browser:
            story = Story(bus, catcher, browser, page_base)
            await story.tell()
        print(f"\nEvery email of this run is in {mail_folder.resolve()}; its data in database {database_name(database_url)!r}")
        if keep_running if keep_running is not None else sys.stdin.isatty():
            print(f"\nÉmilie's open invitation, on the page: {story.open_link}\n"
                  "The workers and the page keep running for you to open it: press Ctrl-C to stop.", flush=True)
            await _until_stopped()
        else:
            # a link printed now would lead to a page that is gone by the time anyone opens it
            print("\nThe workers and the page stop with the story: run `userprov demo --keep-running` (or in a terminal)"
                  " to open an invitation in your own browser.")
        return 0
    finally:
        await bus.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
        controller.stop()


class Story:
    def __init__(self, bus: BusClient, catcher: CatchingHandler, browser: Browser, page_base: str) -> None:
        self.bus, self.catcher, self.browser, self.page_base = bus, catcher, browser, page_base
        self.open_link = ""

    async def tell(self) -> None:
        bus = self.bus
        account_id = f"demo-{int(time.time())}"
        partner_id = f"partner-{int(time.time())}"
        print(f"\n== accounts.upsert {account_id}: 10 GoToMeeting seats, 5 GoToWebinar seats")
        await self.upsert(account_id, "Demo Company", {"gotomeeting": 10, "gotowebinar": 5})

        print("\n== users.add with a pasted list:\n" + "\n".join("   " + line for line in PASTED.splitlines()))
        command_id = await bus.publish(routing.USERS_ADD, {
            "account_id": account_id, "pasted": PASTED, "products": ["gotomeeting"], "language": "en", "group": "sales"})
        [completed] = await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id))
        print("\n== users.add.completed")
        for row in completed.body["results"]:
            errors = "; ".join(f"{e['field']}: {e['code']}" for e in row["errors"])
            print(f"   row {row['row']}: {row['outcome']:<15} {row['email']:<28} {errors}")
        accepted = [r["email"] for r in completed.body["results"] if r["outcome"] == "accepted"]
        sent = await eventually(lambda: len(bus.find(routing.INVITATION_SENT, account_id=account_id)) >= len(accepted)
                                and bus.find(routing.INVITATION_SENT, account_id=account_id), timeout=60)
        print("\n== invitation emails")
        for event in sent:
            print(f"   {event.body['kind']:<8} to {event.body['email']:<22} written to {self.catcher.written.get(event.body['email'])}")
        first = self.catcher.written["ada@example.com"]
        print(f"\n== {first.name} (text part)")
        print("\n".join("   | " + line for line in text_part(first).splitlines()))

        print("\n== Ada opens the link of her email in a browser, ticks the box and accepts")
        print(f"   page: {await self.in_browser('ada@example.com', 'accept')}")
        [activated] = await eventually(lambda: bus.find(routing.USER_ACTIVATED, email="ada@example.com"))
        print(f"   {activated.routing_key}: account {activated.body['account_id']}")

        print("\n== Ada's data in Demo Company (asset.recorded): 2 past sessions, 1 scheduled session, 1 upcoming recording")
        for kind, ref in (("session_history", "s1"), ("session_history", "s2"), ("scheduled_session", "m1"), ("upcoming_recording", "r1")):
            await bus.publish(routing.ASSET_RECORDED, {"account_id": account_id, "email": "ada@example.com", "kind": kind, "ref": ref})
        await eventually(lambda: len(bus.find(routing.ASSET_COUNTED, account_id=account_id)) >= 4)

        print(f"\n== Grace accepts her welcome too; then Partner Company ({partner_id}) adds Ada and Grace")
        print(f"   page: {await self.in_browser('grace@example.com', 'accept')}")
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email="grace@example.com"))
        await self.upsert(partner_id, "Partner Company", {"gotomeeting": 5})
        await bus.publish(routing.USERS_ADD, {"account_id": partner_id, "products": ["gotomeeting"], "users": [
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"}]})
        transfers = await eventually(lambda: len(bus.find(routing.INVITATION_SENT, account_id=partner_id)) >= 2
                                     and bus.find(routing.INVITATION_SENT, account_id=partner_id), timeout=60)
        for event in transfers:
            print(f"   {event.body['kind']:<8} to {event.body['email']:<22} written to {self.catcher.written.get(event.body['email'])}")

        print("\n== Ada opens her transfer invitation: the page shows what accepting moves; she ticks the box and accepts")
        print(f"   page: {await self.in_browser('ada@example.com', 'accept', show_moves=True)}")
        [moved] = await eventually(lambda: bus.find(routing.USER_TRANSFERRED, email="ada@example.com"))
        print(f"   {moved.routing_key}: from {moved.body['from_account_id']} to {moved.body['to_account_id']}, moved {moved.body['moved']}")

        print("\n== Grace opens hers and declines: she stays in Demo Company, suspended in Partner Company")
        print(f"   page: {await self.in_browser('grace@example.com', 'decline')}")
        [suspended] = await eventually(lambda: bus.find(routing.USER_SUSPENDED, email="grace@example.com"))
        print(f"   {suspended.routing_key}: account {suspended.body['account_id']}")

        print("\n== invitations.resend to Émilie: a fresh email, her first link no longer works")
        first_email = self.catcher.written["emilie@example.com"]
        await bus.publish(routing.INVITATIONS_RESEND, {"account_id": account_id, "email": "emilie@example.com"})
        await eventually(lambda: len(bus.find(routing.INVITATION_SENT, email="emilie@example.com")) >= 2, timeout=60)
        await eventually(lambda: self.catcher.written["emilie@example.com"] != first_email, timeout=30)
        print(f"   invitation.sent (sent_count 2), written to {self.catcher.written.get('emilie@example.com')}")

        print("\n== users.remove Alan: his seat is released, his invitation revoked")
        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": "alan@example.com"})
        [removed] = await eventually(lambda: bus.find(routing.USER_REMOVED, email="alan@example.com"))
        print(f"   {removed.routing_key}: released {removed.body['released']}")

        for name, account in (("Demo Company", account_id), ("Partner Company", partner_id)):
            found = await bus.query(routing.ACCOUNTS_GET, {"account_id": account})
            print(f"\n== accounts.get {name}\n   licences: {found['licences']}\n   members:  {found['members']}")
        self.open_link = self.link_of("emilie@example.com")

    async def upsert(self, account_id: str, name: str, licences: dict[str, int]) -> None:
        await self.bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": name, "licences": licences,
                                                         "groups": ["sales"], "settings_templates": ["standard"]})
        await eventually(lambda: self.bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id))

    def link_of(self, email: str) -> str:
        """The link of the person's latest email, on the page."""
        url = re.search(r"\S+\?token=[A-Za-z0-9_-]+", text_part(self.catcher.written[email]))
        assert url is not None, "no link in the email"
        return self.page_base + "?" + urlsplit(url.group(0)).query

    async def in_browser(self, email: str, action: str, *, show_moves: bool = False) -> str:
        """Opens the person's latest link in the headless browser, ticks and clicks: the page's heading after."""
        context = await self.browser.new_context(locale="en-US")
        try:
            page = await context.new_page()
            await page.goto(self.link_of(email))
            print(f"   opened: {await page.inner_text('h1')} ({await state(page)})")
            if show_moves:
                for line in (await page.inner_text("ul.moves")).splitlines():
                    print(f"      {line}")
            await answer(page, action)
            return f"{await page.inner_text('h1')} ({await state(page)})"
        finally:
            await context.close()


def _ready(page_base: str) -> bool:
    root = urlunsplit(urlsplit(page_base)._replace(path="/readyz", query=""))
    try:
        with urllib.request.urlopen(root, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


async def _until_stopped() -> None:
    """Until SIGINT (Ctrl-C) or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def demo_database_url(database_url: str) -> str:
    return with_database(database_url, database_name(database_url) + "_demo")
