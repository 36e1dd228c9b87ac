"""`userprov demo`: runs the whole system on this machine and shows what it does.

Starts a mail catcher writing each email to a folder, starts the four workers, creates an
account, adds a pasted list, prints each row's result and where each email was written,
accepts one invitation from its email link, and shows the account afterwards."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from contracts import routing
from userprov.db.connection import database_name, drop_database
from userprov.db.migrate import migrate
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.mail_catcher import CatchingHandler, start_mail_catcher, text_part
from userprov_devtools.waiting import eventually

PASTED = """Ada Lovelace ada@example.com; Alan Mathison Turing alan@example.com
Grace\tHopper Murray\tgrace@example.com
Ada Again ADA@example.com; Nobody broken-address; Émilie du Châtelet emilie@example.com"""


async def run_demo(settings: Settings, mail_folder: Path) -> int:
    """Each run has a database of its own (`<database>_demo`, made anew): people of an earlier
    run must not turn this run's welcome into a transfer."""
    database_url = demo_database_url(settings.database_url)
    await drop_database(database_url)
    await migrate(database_url, create_database=True)
    settings = settings.model_copy(update={"database_url": database_url})
    for old in mail_folder.glob("*.eml"):
        old.unlink()
    catcher = CatchingHandler(folder=mail_folder)
    controller = start_mail_catcher(settings.smtp_host, settings.smtp_port, catcher)
    workers = subprocess.Popen([sys.executable, "-m", "userprov", "run"],
                               env={**os.environ, "USERPROV_LOG_LEVEL": "WARNING", "USERPROV_DATABASE_URL": database_url})
    bus = BusClient(settings.amqp_url)
    try:
        await bus.start()
        await bus.wait_for_workers()
        account_id = f"demo-{int(time.time())}"
        print(f"\n== accounts.upsert {account_id}: 10 GoToMeeting seats, 5 GoToWebinar seats")
        await bus.publish(routing.ACCOUNTS_UPSERT, {
            "account_id": account_id, "name": "Demo Company", "licences": {"gotomeeting": 10, "gotowebinar": 5},
            "groups": ["sales"], "settings_templates": ["standard"]})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id))

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
            print(f"   {event.body['kind']:<8} to {event.body['email']:<22} written to {catcher.written.get(event.body['email'])}")

        first = catcher.written[sent[0].body["email"]]
        print(f"\n== {first.name} (text part)")
        print("\n".join("   | " + line for line in text_part(first).splitlines()))
        token = _token(text_part(first))
        print(f"\n== invitation.accepted with the token from {first.name}")
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token})
        done = await eventually(lambda: bus.find(routing.USER_ACTIVATED, account_id=account_id) or bus.find(routing.USER_TRANSFERRED, to_account_id=account_id))
        print(f"   {done[0].routing_key}: {done[0].body}")

        account = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        print("\n== accounts.get")
        print(f"   licences: {account['licences']}\n   members:  {account['members']}")
        print(f"\nEvery email of this run is in {mail_folder.resolve()}; its data in database {database_name(database_url)!r}")
        return 0
    finally:
        await bus.stop()
        workers.terminate()
        workers.wait(60)
        controller.stop()


def demo_database_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + database_name(database_url) + "_demo"))


def _token(text: str) -> str:
    url = re.search(r"\S+token=\S+", text)
    assert url is not None, "no link in the email"
    return parse_qs(urlsplit(url.group(0)).query)["token"][0]
