"""A real SMTP server for tests (aiosmtpd), recording what it accepts.

Recipients steer its answers: a local part starting with `tempfail` is answered 451 on the
first try and accepted after (`tempfail6x` on the first 6 tries); `busy421` is answered 421 (the server closing the connection) on
the first try; `dropconn` has its connection dropped in the middle of the first envelope;
`reject` is answered 550 every time, `permfail` 550 on the first try only (a mailbox fixed later); `slowrcpt` is accepted after about SLOW_RCPT_SECONDS (as a server
that checks each recipient would), so that a batch lasts long enough to kill workers during it
without widening the moment when an email is accepted but not yet recorded. Each email notes
the connection it came over and when it arrived."""
from __future__ import annotations

import asyncio
import email
import email.policy
import multiprocessing
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cached_property
from multiprocessing.connection import Connection

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from userprov_devtools.ports import free_port

SLOW_RCPT_SECONDS = 0.1


@dataclass(frozen=True)
class ReceivedEmail:
    to: str
    raw: bytes
    connection: tuple[str, int]  # the client's address and port
    received_at: float = 0.0  # time.time() when its DATA arrived, before the answer

    @cached_property
    def message(self) -> EmailMessage:
        """Parsed when first asked for: parsing every email as it arrives would make the test
        process a large consumer of the CPU that the workers under test share."""
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return part.get_content()

    @property
    def text(self) -> str:
        return self.part("plain")


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[ReceivedEmail] = []
        self._by_recipient: dict[str, list[ReceivedEmail]] = {}
        self.refusals: list[tuple[str, int]] = []
        self._first_try_done: set[tuple[str, str]] = set()
        self._refused: dict[str, int] = {}  # address: 451s answered so far (tempfail<k>x)
        self._lock = threading.Lock()
        # run (in the server's loop) when an email to the address has arrived, before it is answered 250
        self.before_accepting: dict[str, Callable[[], Awaitable[None]]] = {}

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        local = address.split("@", 1)[0].lower()
        if local.startswith("slowrcpt"):
            await asyncio.sleep(random.uniform(0.5, 1.5) * SLOW_RCPT_SECONDS)
        with self._lock:
            if local.startswith("permfail") and ("permfail", address) not in self._first_try_done:
                self._first_try_done.add(("permfail", address))
                self.refusals.append((address, 550))
                return "550 5.2.1 mailbox disabled"
            if local.startswith("reject"):
                self.refusals.append((address, 550))
                return "550 5.1.1 mailbox unavailable"
            times = re.match(r"tempfail(\d+)x", local)
            if times and self._refused.get(address, 0) < int(times.group(1)):
                self._refused[address] = self._refused.get(address, 0) + 1
                self.refusals.append((address, 451))
                return "451 4.3.0 try again later"
            for prefix, code in (("tempfail", 451), ("busy421", 421), ("dropconn", 0)):
                if local.startswith(prefix) and not times and (prefix, address) not in self._first_try_done:
                    self._first_try_done.add((prefix, address))
                    self.refusals.append((address, code))
                    if code == 0:
                        assert server.transport is not None
                        server.transport.abort()
                        return "250 OK"  # never reaches the client
                    if code == 421:
                        return "421 4.3.2 service shutting down, closing the connection"
                    return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived = time.time()
        raw = envelope.original_content or envelope.content
        for rcpt in envelope.rcpt_tos:
            hook = self.before_accepting.pop(rcpt.lower(), None)
            if hook is not None:
                await hook()
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                received = ReceivedEmail(rcpt.lower(), raw, tuple(session.peer[:2]), arrived)  # type: ignore[arg-type]
                self.received.append(received)
                self._by_recipient.setdefault(received.to, []).append(received)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._by_recipient.get(address.lower(), []))


class RecordingSmtpServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def arrivals(self, address: str) -> list[float]:
        """time.time() of each email to `address` when its DATA arrived."""
        return [received.received_at for received in self.handler.to(address)]

    def restart(self) -> None:
        """Serves again on the same port, with the same recordings (after stop)."""
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()




class SmtpSinkProcess:
    """An SMTP server in a process of its own, recording only who was emailed and when.

    For latency measured beside thousands of other emails: in the test's process a sink shares the
    GIL and the loop with the test, and its answers to a batch's emails delay the one being timed.
    A real mail relay is a process of its own too."""

    def __init__(self) -> None:
        self.port = free_port()
        self._arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        context = multiprocessing.get_context("spawn")
        self._receiving, sending = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_sink, args=(self.port, sending), daemon=True, name="smtp-sink")
        self._reader = threading.Thread(target=self._read, daemon=True, name="smtp-sink-reader")
        self._ready = threading.Event()

    def start(self) -> None:
        self._process.start()
        self._reader.start()
        if not self._ready.wait(30):
            self.stop()
            raise RuntimeError("the SMTP sink process did not start")

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(10)

    def arrivals(self, address: str) -> list[float]:
        """time.time() of each email to `address` when its DATA arrived."""
        with self._lock:
            return list(self._arrivals.get(address.lower(), ()))

    def _read(self) -> None:
        while True:
            try:
                batch = self._receiving.recv()
            except EOFError:
                return
            if batch is None:
                self._ready.set()
                continue
            with self._lock:
                for address, arrived in batch:
                    self._arrivals.setdefault(address, []).append(arrived)

    def __enter__(self) -> SmtpSinkProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class _ArrivalsHandler:
    def __init__(self, sending: Connection) -> None:
        self._sending = sending

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived = time.time()
        self._sending.send([(rcpt.lower(), arrived) for rcpt in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


def _serve_sink(port: int, sending: Connection) -> None:
    controller = Controller(_ArrivalsHandler(sending), hostname="127.0.0.1", port=port)
    controller.start()
    sending.send(None)
    threading.Event().wait()
