"""The development tools a newcomer starts with: the mail catcher, and a demo that runs the
same way twice."""
from __future__ import annotations

import asyncio
import os
import queue
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import IO

from tests.support.infra import create_infra, drop_vhost
from userprov.db.connection import drop_database
from userprov_devtools.demo import demo_database_url
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually


class TestMailCatcher:
    async def test_writes_each_email_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        async with catching(tmp_path) as (port, printed):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi"
            message.set_content("hello")
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.send_message(message)
            [written] = await eventually(lambda: list(tmp_path.glob("*.eml")), 10, what="the email written")
            assert b"hello" in written.read_bytes()
            # a line for each email: its recipient, subject and file (it said nothing)
            assert await next_line(printed) == f"to b@example.com: Hi -> {written}\n"
            # a subject is decoded and kept on one line, whatever a sender put in it
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("a@example.com", ["c@example.com"], b"Subject: =?utf-8?q?Caf=C3=A9_=1B[31m?=\r\n"
                                b" folded\r\n\r\nbody\r\n")
            line = await next_line(printed)
            assert line.startswith("to c@example.com: Caf\u00e9 \ufffd[31m folded -> ") and "\x1b" not in line, line

    async def test_a_second_run_on_the_same_folder_overwrites_nothing(self, tmp_path: Path) -> None:
        """A catcher started again on a folder once numbered from 000001 again and overwrote the
        first run's files, leaving the rest of them beside its own: numbering goes on after the
        highest number in the folder."""
        earlier = {tmp_path / "000001-b@example.com.eml": b"first run, to b", tmp_path / "000002-c@example.com.eml": b"first run, to c",
                   tmp_path / "notes.txt": b"not an email"}
        for path, content in earlier.items():
            path.write_bytes(content)
        async with catching(tmp_path) as (port, printed):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: second run\r\n\r\nhello again\r\n")
            assert await next_line(printed) == f"to b@example.com: second run -> {tmp_path / '000003-b@example.com.eml'}\n"
            assert (tmp_path / "000003-b@example.com.eml").read_bytes().endswith(b"hello again\r\n")
            assert {path: path.read_bytes() for path in earlier} == earlier


@asynccontextmanager
async def catching(folder: Path) -> AsyncIterator[tuple[int, queue.Queue[str]]]:
    """`userprov mail-catcher` on a free port, once it says it listens: its port and its printed
    lines; it must stop with 0 on SIGTERM at the end."""
    port = free_port()
    catcher = subprocess.Popen([sys.executable, "-m", "userprov", "mail-catcher", "--folder", str(folder)],
                               env={**os.environ, "USERPROV_SMTP_PORT": str(port)}, stdout=subprocess.PIPE, text=True)
    try:
        assert catcher.stdout is not None
        printed = lines_of(catcher.stdout)
        assert "catching emails on 127.0.0.1:" in await next_line(printed)
        yield port, printed
        catcher.send_signal(signal.SIGTERM)
        assert catcher.wait(10) == 0
    finally:
        if catcher.poll() is None:
            catcher.kill()


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """The stream's lines as they come, read by a thread ('' at its end)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


async def next_line(lines: queue.Queue[str], timeout: float = 10) -> str:
    try:
        return await asyncio.to_thread(lines.get, timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line printed within {timeout} s") from None


class TestDemo:
    def test_tells_the_whole_story_twice_the_same_way(self, tmp_path: Path) -> None:
        """The whole story each time (a welcome accepted on the page in a headless browser, a
        transfer that moves data, a decline, a resend, a removal, an open link to click). A
        second run once gave a transfer invitation from the first run's account: each run has a
        database of its own, made anew. The first runs without a terminal, so the page stops
        with it; the second keeps running, and its link opens while it does."""
        infra = create_infra()  # a vhost of its own: the session's workers must not take the demo's messages
        env = {**os.environ, "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url,
               "USERPROV_SMTP_PORT": str(free_port()), "USERPROV_LINKS_PORT": str(free_port()), "USERPROV_LOG_JSON": "true"}
        try:
            for keep_running in (False, True):
                started = time.monotonic()
                out = run_demo(env, tmp_path, keep_running)
                first_emails = out.split("== invitation emails")[1].split("==")[0]
                assert first_emails.count("welcome  to") == 4 and "transfer" not in first_emails, out  # nothing of the run before
                # the whole story, through the page in a headless browser
                assert "page: You're in (activated)" in out, out
                assert "Session history: 2" in out and "page: Your user has moved (transferred)" in out, out
                assert "'session_history': 2, 'scheduled_sessions': 1, 'upcoming_recordings': 1" in out, out
                assert "page: Invitation declined (suspended)" in out and "user.suspended" in out, out
                assert "invitation.sent (sent_count 2)" in out and "user.removed: released {'gotomeeting': 1}" in out, out
                if keep_running:
                    # the link was printed while the page is up: it opens Émilie's invitation
                    link = out.split("Émilie's open invitation, on the page: ")[1].split()[0]
                    assert link.startswith(f"http://127.0.0.1:{env['USERPROV_LINKS_PORT']}/invitation?token="), out
                    assert "press Ctrl-C to stop" in out
                else:
                    # no terminal: the page stops with the story, so no link is printed (it printed a dead one)
                    assert "open invitation" not in out and "The workers and the page stop with the story" in out, out
                assert time.monotonic() - started < 120
        finally:
            drop_vhost(infra.vhost)
            asyncio.run(drop_database(demo_database_url(infra.database_url)))


def run_demo(env: dict[str, str], mail_folder: Path, keep_running: bool) -> str:
    """The demo's output, without a terminal; with --keep-running, its link is opened while the
    page runs, then it is stopped with SIGTERM."""
    command = [sys.executable, "-m", "userprov", "demo", "--mail-folder", str(mail_folder)]
    if not keep_running:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout
    errors = tempfile.TemporaryFile("w+")  # its workers' logs too: a pipe nobody reads would fill
    demo = subprocess.Popen([*command, "--keep-running"], env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert demo.stdout is not None
        printed, out, deadline = lines_of(demo.stdout), "", time.monotonic() + 180
        while "press Ctrl-C to stop" not in out:
            try:
                line = printed.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(f"no link within 180 s: {out[-2000:]}") from None
            assert line, f"the demo ended before its link: {out[-2000:]}"
            out += line
        link = out.split("Émilie's open invitation, on the page: ")[1].split()[0]
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200 and "Demo Company" in page.read().decode()
        demo.send_signal(signal.SIGTERM)
        if demo.wait(90) != 0:
            errors.seek(0)
            raise AssertionError(f"the demo exited with {demo.returncode}: {errors.read()[-2000:]}")
        while line := printed.get(timeout=10):
            out += line
        return out
    finally:
        if demo.poll() is None:
            demo.kill()
        errors.close()
