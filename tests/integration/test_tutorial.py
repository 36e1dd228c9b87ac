"""The tutorial (docs/tutorial/first-hour.md) as a reader runs it: each command and Python block
in the order shown, on a database and vhost of its own, each output as the page shows it; where
the reader clicks in the invitation page, Debian's Chromium clicks. The page once showed a
`users.add` whose `requested_by` was no member, refused as `forbidden`: every step now does
what its text says. The event line the page shows `userprov events` printing in the first shell
(a background job) must be among the lines it printed. It runs where an earlier run left its
emails: a second run once failed at steps 7 and 8, which read the first run's emails too."""
from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path
from typing import Any

from tests.support.infra import create_infra, drop_vhost
from userprov.db.connection import drop_database
from userprov_devtools.browser import answer, headless_chromium, state
from userprov_devtools.ports import free_port
from userprov_devtools.runnable_docs import Runner, Step, steps
from userprov_devtools.waiting import eventually

TUTORIAL = Path(__file__).parents[2] / "docs" / "tutorial" / "first-hour.md"


async def accept_in_browser(namespace: dict[str, Any], variable: str) -> None:
    """What the page asks of the reader: open the link, tick the box, press Accept."""
    async with headless_chromium() as browser:
        page = await browser.new_page()
        await page.goto(namespace[variable])
        assert await state(page) in ("welcome", "transfer"), await page.content()
        assert await answer(page, "accept") in ("activated", "transferred"), await page.content()


def printed_by_events(runner: Runner, shown: Step) -> bool:
    """Whether the background `userprov events` printed a line as the page shows it."""
    [log] = [log for process, log in zip(runner.background, runner.logs, strict=True) if "userprov events" in process.args[-1]]
    checker = doctest.OutputChecker()
    return any(checker.check_output(shown.text, line + "\n", doctest.ELLIPSIS)
               for line in log.read_text(errors="replace").splitlines())


async def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    infra = create_infra()
    links_port = free_port()
    env = {"USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url,
           "USERPROV_SMTP_PORT": str(free_port()), "USERPROV_LINKS_PORT": str(links_port),
           "USERPROV_LINK_BASE_URL": f"http://127.0.0.1:{links_port}/invitation", "USERPROV_LOG_JSON": "true",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # the reader's activated venv
    earlier_run = tmp_path / "tutorial-mail"
    earlier_run.mkdir()
    for name in ("000001-ada@example.com.eml", "000002-grace@example.com.eml", "000003-alan@example.com.eml"):
        (earlier_run / name).write_text("Subject: an earlier run's\n\nhttp://127.0.0.1:1/invitation?token=old\n")
    runner = Runner(env, tmp_path, hooks={"accept-in-browser": accept_in_browser})
    page = steps(TUTORIAL)
    assert [s.kind for s in page].count("python") >= 10 and [s.kind for s in page].count("hook") == 2
    assert sum(s.text.startswith("userprov add ") for s in page if s.kind == "sh") == 3
    [event_shown] = [s for s in page if s.kind == "json" and '"routing_key": "user.transferred"' in s.text]
    try:
        await runner.run(page)
        await eventually(lambda: printed_by_events(runner, event_shown), 30, what="the event line the page shows, printed by userprov events")
    except (AssertionError, TimeoutError) as failure:
        raise AssertionError(f"{failure}\n\nwhat ran in the background:\n{runner.stop()}") from None
    finally:
        bus = runner.namespace.get("bus")
        if bus is not None:
            await bus.stop()
        runner.stop()
        drop_vhost(infra.vhost)
        await drop_database(infra.database_url)
