"""SMTP connections kept open and reused, a bounded number per process.

A new connection per email (connect, greeting, EHLO, QUIT) costs the client and the server
about as much as the email itself. A connection goes back to the pool only when it is known
to be in step with the server: after a delivery, or after a refusal the server answered
(aiosmtplib then resets the envelope with RSET). Anything else (a timeout, a dropped
connection, a 421, a cancelled try) closes it."""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    start_tls: bool
    timeout_seconds: float
    local_hostname: str | None  # the EHLO name; the machine's FQDN when None
    use_tls: bool = False  # implicit TLS from the first byte (SMTPS, port 465)
    ca_file: str | None = None  # CA certificates that sign the server's certificate; the system's when None


class TooLate(Exception):
    """No connection was free in time to start a try."""


class Unreachable(Exception):
    """No connection could be opened: the SMTP server is down or out of reach, not this email's fault."""


class SmtpConnections:
    def __init__(self, server: SmtpServer, size: int, idle_seconds: float) -> None:
        self._server = server
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (client, when it was put back)
        self._idle_seconds = idle_seconds
        self._local_hostname = server.local_hostname
        self.opened = 0  # connections opened since start, for tests and metrics

    @asynccontextmanager
    async def connection(self, timeout: float, latest_start: float) -> AsyncIterator[aiosmtplib.SMTP]:
        """A connected client, exclusively for the caller until the block ends. `timeout`
        bounds connecting and the block together (aiosmtplib's own timeout is per step);
        waiting for a free connection is not counted, but when none was free before
        `latest_start` (monotonic), TooLate is raised and nothing is sent."""
        async with self._slots:
            if time.monotonic() > latest_start:
                raise TooLate()
            client: aiosmtplib.SMTP | None = None
            reusable = False
            try:
                async with asyncio.timeout(timeout):
                    client = self._take_idle() or await self._connect_or_unreachable()
                    yield client
                reusable = True
            except aiosmtplib.SMTPResponseException as refusal:
                reusable = refusal.code != 421  # 421: the server is closing the connection
                raise
            except aiosmtplib.SMTPRecipientsRefused:
                reusable = True
                raise
            finally:
                if client is not None:
                    if reusable and client.is_connected:
                        self._idle.append((client, time.monotonic()))
                    else:
                        client.close()

    def close(self) -> None:
        for client, _ in self._idle:
            client.close()
        self._idle.clear()

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < self._idle_seconds:
                return client
            client.close()  # the server may have dropped it meanwhile: never risk a try on it
        return None

    async def probe(self) -> None:
        """Raises unless the server takes a connection (greeting, EHLO, QUIT)."""
        client = await self._connect()
        try:
            await client.quit()
        finally:
            client.close()

    async def _connect_or_unreachable(self) -> aiosmtplib.SMTP:
        try:
            return await self._connect()
        except (aiosmtplib.SMTPException, OSError) as error:  # a timeout is an OSError too
            raise Unreachable(type(error).__name__) from error

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._server
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            start_tls=s.start_tls,
            use_tls=s.use_tls,
            cert_bundle=s.ca_file,
            timeout=s.timeout_seconds,
            local_hostname=await self._ehlo_name(),
        )
        await client.connect()
        self.opened += 1
        return client

    async def _ehlo_name(self) -> str:
        """Looked up once per process (aiosmtplib would call getfqdn in a thread per connection)."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname
