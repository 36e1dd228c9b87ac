"""The mailer against a real SMTP server: the deadline that keeps every try inside the claim."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Hashable, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.smtp import free_port
from userprov.invitation_mailing.mailer import Mailer, OutgoingEmail
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.settings import Settings

EMAIL = RenderedEmail(subject="Hello", text="Hello\n", html="<p>Hello</p>")


class SlowServer:
    """Takes `seconds` to accept each email."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.received: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.seconds)
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SlowServer, int]]:
    handler, port = SlowServer(0.2), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def mailer_for(port: int, **settings: object) -> Mailer:
    return Mailer(Settings(smtp_port=port, smtp_local_hostname="client.example.com", **settings))  # type: ignore[arg-type]


class TestDeadline:
    async def test_no_try_starts_that_could_end_after_the_deadline(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        mailer = mailer_for(port, smtp_connections=2, smtp_timeout_seconds=0.5)
        emails = [OutgoingEmail(n, f"slow{n}@example.com", EMAIL) for n in range(12)]
        tries: Counter[Hashable] = Counter()
        started = time.monotonic()
        outcomes = await mailer.send_many(emails, deadline=started + 1.0, tries=tries)
        assert time.monotonic() - started < 1.0
        assert 0 < len(outcomes) < len(emails)  # 2 connections, 0.2 s an email, tries may start until 0.5 s
        assert all(o.delivered for o in outcomes.values())
        assert sorted(server.received) == sorted(f"slow{k}@example.com" for k in outcomes)  # the others were never tried
        assert all(tries[e.key] == 0 for e in emails if e.key not in outcomes)
        mailer.close()

    async def test_emails_share_a_few_reused_connections(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        server.seconds = 0.01
        mailer = mailer_for(port, smtp_connections=2)
        emails = [OutgoingEmail(n, f"round{n}@example.com", EMAIL) for n in range(30)]
        outcomes = await mailer.send_many(emails, deadline=time.monotonic() + 30)
        assert len(outcomes) == 30 and all(o.delivered for o in outcomes.values())
        assert mailer.connections_opened == 2
        mailer.close()

    async def test_an_unreachable_server_ends_each_email_after_its_tries(self) -> None:
        mailer = mailer_for(free_port(), smtp_attempts=3, smtp_backoff_seconds=0.01, smtp_backoff_max_seconds=0.02)
        tries: Counter[Hashable] = Counter()
        outcomes = await mailer.send_many([OutgoingEmail("a", "nobody@example.com", EMAIL)], time.monotonic() + 30, tries)
        assert not outcomes["a"].delivered and "retries exhausted" in (outcomes["a"].reason or "")
        assert tries["a"] == 3


class TestOneAddressNeverFailsTheChunk:
    async def test_a_mailbox_the_server_cannot_take_fails_alone(self) -> None:
        server, port = SlowServer(0.0), free_port()
        controller = Controller(server, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
        controller.start()
        try:
            mailer = mailer_for(port, smtp_connections=2)
            addresses = ["one@example.com", "jé@example.com", "two@example.com"]
            outcomes = await mailer.send_many([OutgoingEmail(n, to, EMAIL) for n, to in enumerate(addresses)], time.monotonic() + 30)
            assert outcomes[0].delivered and outcomes[2].delivered
            assert not outcomes[1].delivered and "not supported" in (outcomes[1].reason or "")
            assert sorted(server.received) == ["one@example.com", "two@example.com"]
            mailer.close()
        finally:
            controller.stop()

    async def test_a_server_with_smtputf8_takes_it(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        server.seconds = 0.0
        mailer = mailer_for(port)
        outcomes = await mailer.send_many([OutgoingEmail("a", "jé@example.com", EMAIL)], time.monotonic() + 30)
        assert outcomes["a"].delivered and server.received == ["jé@example.com"]
        mailer.close()
