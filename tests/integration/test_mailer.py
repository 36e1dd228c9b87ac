"""The mailer against a real SMTP server: one try per call, the latest start that keeps every
try inside its claim, reused connections, and one outcome per address."""
from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from userprov.invitation_mailing.mailer import Mailer
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.settings import Settings
from userprov_devtools.ports import free_port

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


async def mailer_circuit_open(mailer: Mailer) -> None:
    while not mailer.circuit.is_open:
        await asyncio.sleep(0.01)


def mailer_for(port: int, **settings: object) -> Mailer:
    return Mailer(Settings(smtp_port=port, smtp_local_hostname="client.example.com", **settings))  # type: ignore[arg-type]


class TestLatestStart:
    async def test_no_try_starts_after_its_latest_start(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        mailer = mailer_for(port, smtp_connections=1)  # 2 connections: 1, and 1 kept for small work
        latest_start = time.monotonic() + 0.1
        outcomes = await asyncio.gather(*(mailer.send(f"n{n}@example.com", EMAIL, latest_start) for n in range(3)))
        # 0.2 s an email on each connection: the third could only start after 0.1 s
        assert [o.result for o in outcomes] == ["delivered", "delivered", "temporary"] and "free in time" in (outcomes[2].reason or "")
        assert sorted(server.received) == ["n0@example.com", "n1@example.com"]
        mailer.close()

    async def test_emails_share_a_few_reused_connections(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        server.seconds = 0.01
        mailer = mailer_for(port, smtp_connections=2)
        outcomes = await asyncio.gather(*(mailer.send(f"round{n}@example.com", EMAIL, time.monotonic() + 30) for n in range(30)))
        assert all(o.delivered for o in outcomes) and len(server.received) == 30
        assert mailer.connections_opened == 3  # 2, and 1 kept for small work
        mailer.close()

    async def test_a_server_down_opens_the_circuit_and_tries_then_do_not_count(self) -> None:
        port = free_port()
        mailer = mailer_for(port, circuit_probe_seconds=0.05)
        first = await mailer.send("first@example.com", EMAIL, time.monotonic() + 30)
        # the try waits for the probe's verdict: down, so it is given back untried (it never counts
        # toward the retry window; before, the tries until the probe had answered counted)
        assert first.result == "not_tried" and mailer.circuit.is_open, first
        await asyncio.wait_for(mailer_circuit_open(mailer), 5)
        later = await mailer.send("later@example.com", EMAIL, time.monotonic() + 30)
        assert later.result == "not_tried", later
        handler = SlowServer(0)
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await asyncio.wait_for(mailer.circuit.wait_closed(), 5)
            assert (await mailer.send("back@example.com", EMAIL, time.monotonic() + 30)).delivered
        finally:
            controller.stop()
            mailer.close()


class TestOneAddressNeverFailsAnother:
    async def test_a_mailbox_the_server_cannot_take_fails_alone(self) -> None:
        server, port = SlowServer(0.0), free_port()
        controller = Controller(server, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
        controller.start()
        try:
            mailer = mailer_for(port, smtp_connections=2)
            addresses = ["one@example.com", "jé@example.com", "two@example.com"]
            outcomes = await asyncio.gather(*(mailer.send(to, EMAIL, time.monotonic() + 30) for to in addresses))
            assert outcomes[0].delivered and outcomes[2].delivered
            assert outcomes[1].result == "permanent" and "not supported" in (outcomes[1].reason or "")
            assert sorted(server.received) == ["one@example.com", "two@example.com"]
            mailer.close()
        finally:
            controller.stop()

    async def test_a_server_with_smtputf8_takes_it(self, slow_smtp: tuple[SlowServer, int]) -> None:
        server, port = slow_smtp
        server.seconds = 0.0
        mailer = mailer_for(port)
        outcome = await mailer.send("jé@example.com", EMAIL, time.monotonic() + 30)
        assert outcome.delivered and server.received == ["jé@example.com"]
        mailer.close()


class Refusing:
    """Refuses RCPT for local parts starting with `refused` (550) and notes every envelope it is given."""

    def __init__(self) -> None:
        self.mail_options: list[list[str]] = []
        self.rcpts: list[str] = []
        self.received: list[bytes] = []

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        self.mail_options.append(options)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        self.rcpts.append(address)
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 OK"


class TestMailTransaction:
    """MAIL, RCPT and DATA written by the mailer itself (`invitation_mailing.envelope`)."""

    @pytest.fixture
    def refusing(self) -> Iterator[tuple[Refusing, int]]:
        handler, port = Refusing(), free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=1_000_000)
        controller.start()
        yield handler, port
        controller.stop()

    async def test_a_refused_recipient_leaves_a_clean_envelope_for_the_next_email(self, refusing: tuple[Refusing, int]) -> None:
        server, port = refusing
        mailer = mailer_for(port, smtp_connections=1)
        try:
            refused = await mailer.send("refused@example.com", EMAIL, time.monotonic() + 30)
            taken = await mailer.send("taken@example.com", EMAIL, time.monotonic() + 30)  # on the same connection
            assert refused.result == "permanent" and (refused.reason or "").startswith("permanent failure: 550")
            assert taken.delivered, taken
            assert mailer.connections_opened == 1 and len(server.received) == 1
        finally:
            mailer.close()

    async def test_the_size_is_announced_and_the_message_arrives_whole(self, refusing: tuple[Refusing, int]) -> None:
        server, port = refusing
        mailer = mailer_for(port)
        try:
            assert (await mailer.send("ada@example.com", EMAIL, time.monotonic() + 30)).delivered
            [options] = server.mail_options
            size = int(options[0].partition("=")[2])
            assert options[0].upper().startswith("SIZE=") and size == len(server.received[0])
            assert b"Subject: Hello" in server.received[0]
        finally:
            mailer.close()

    @pytest.mark.parametrize("address", [
        "a@example.com>\r\nRCPT TO:<b@example.com", "a@example.com> NOTIFY=NEVER", "a b@example.com", "a@exa\x00mple.com",
        "<a@example.com>", '"a"@example.com',
    ])
    async def test_an_address_that_would_change_the_command_is_never_sent(self, refusing: tuple[Refusing, int], address: str) -> None:
        server, port = refusing
        mailer = mailer_for(port)
        try:
            outcome = await mailer.send(address, EMAIL, time.monotonic() + 30)
            assert outcome.result == "permanent" and "cannot be sent" in (outcome.reason or "")
            assert server.rcpts == [] and server.mail_options == []
        finally:
            mailer.close()

    @pytest.mark.parametrize("address", [
        "a\udc80@example.com", "\u202eb@example.com", "a" * 100_000 + "@example.com", "",
    ])
    async def test_a_hostile_address_fails_alone_and_the_connection_goes_on(self, refusing: tuple[Refusing, int],
                                                                            address: str) -> None:
        """Whatever reached the mailer (the contracts refuse these long before): its one email
        fails, nothing of it is delivered, and the next email on the same connection goes."""
        server, port = refusing
        mailer = mailer_for(port, smtp_connections=1)
        try:
            outcome = await mailer.send(address, EMAIL, time.monotonic() + 30)
            taken = await mailer.send("taken@example.com", EMAIL, time.monotonic() + 30)
            assert outcome.result == "permanent", outcome
            assert taken.delivered, taken
            assert len(server.received) == 1
        finally:
            mailer.close()

    def test_a_sender_setting_without_an_address_stops_the_mailer_at_its_start(self) -> None:
        with pytest.raises(ValueError, match="USERPROV_SMTP_SENDER"):
            Mailer(Settings(smtp_sender="GoTo Admin <no reply@example.com>"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class TestImplicitTls:
    """SMTPS (port 465): TLS from the first byte, the server's certificate checked."""

    async def test_delivered_over_implicit_tls_to_a_server_the_ca_file_vouches_for(self, certificate: tuple[str, str]) -> None:
        cert, key = certificate
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        handler, port = SlowServer(0), free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=context)
        controller.start()
        try:
            mailer = mailer_for(port, smtp_tls=True, smtp_ca_file=cert)
            assert (await mailer.send("secure@example.com", EMAIL, time.monotonic() + 30)).delivered
            assert handler.received == ["secure@example.com"]
            mailer.close()
            unvouched = mailer_for(port, smtp_tls=True)  # the system's CAs do not know this certificate
            outcome = await unvouched.send("refused@example.com", EMAIL, time.monotonic() + 30)
            assert not outcome.delivered and handler.received == ["secure@example.com"]
            unvouched.close()
        finally:
            controller.stop()

    def test_implicit_tls_and_starttls_exclude_each_other(self) -> None:
        with pytest.raises(ValueError, match="exclude each other"):
            Settings(smtp_tls=True, smtp_starttls=True)
