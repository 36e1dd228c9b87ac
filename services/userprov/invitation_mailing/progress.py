"""`users.add.progress`: how far a large `users.add` has come, published while its invitations are
emailed, at most once a second per command however many mailing processes record its emails.

No timer per command on the hot path: recording an email's outcome only notes its command (when
the claim found it tracked: userprov.user_creation adds the large ones to `command_progress`). One
task per process publishes for the commands noted: a conditional update of the command's
`published_at` (a second old or more) decides, in PostgreSQL, which process publishes; the counts
are read then (userprov.add_progress) and the event written to the outbox in the same
transaction. A process that was beaten to it tries again when the second is over, so the last
counts are published too; the event that finds every new member emailed or failed says `done`,
and none follows it."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg
import structlog

from contracts.events import UsersAddProgress
from userprov import add_progress
from userprov.runtime import outbox
from userprov.runtime.outbox import OutgoingMessage
from userprov.runtime.unit_of_work import OnCommit

log = structlog.get_logger()

INTERVAL_SECONDS = 1.0

# the commands asked for, with the seconds since their last event
_WHERE = """
SELECT command_id, correlation_id, account_id, rows, created, refused, done,
       COALESCE(extract(epoch FROM clock_timestamp() - published_at)::float8, 1e9) AS since
FROM command_progress WHERE command_id = ANY($1::text[])
"""
# the last statement before the commit, so that events commit at least a second apart: of
# processes that race, the first takes the row's lock and the others then find it not due
_DUE = """
UPDATE command_progress SET published_at = clock_timestamp(), done = $3
WHERE command_id = $1 AND NOT done
  AND (published_at IS NULL OR published_at <= clock_timestamp() - make_interval(secs => $2::float8))
RETURNING published_at
"""


class ProgressPublisher:
    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._next: dict[str, float] = {}  # command -> when to try to publish it (loop time)
        self._touched: set[str] = set()  # commands with outcomes recorded since their last event from here
        self._wake = asyncio.Event()

    def touched(self, command_ids: Iterable[str]) -> None:
        """Outcomes of these commands' emails were committed."""
        now = asyncio.get_running_loop().time()
        for command_id in command_ids:
            self._touched.add(command_id)
            self._next.setdefault(command_id, now)
        self._wake.set()

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = [c for c, at in self._next.items() if at <= now]
            if not ready:
                self._wake.clear()
                wait = min(self._next.values(), default=now + 3600.0) - now
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
                continue
            self._touched.difference_update(ready)
            try:
                waits = await self._publish(pool, on_commit, ready)
            except Exception as error:  # noqa: BLE001 - progress is a hint: try again in a while, never stop the mailing
                log.warning("add_progress_not_published", error=repr(error))
                waits = {c: self._interval for c in ready}
            for command_id in ready:
                left = waits.get(command_id)
                if left is None or (left == 0.0 and command_id not in self._touched):
                    self._next.pop(command_id, None)  # done, gone, or published with every outcome noted here
                else:
                    self._next[command_id] = loop.time() + (left or self._interval)

    async def _publish(self, pool: asyncpg.Pool, on_commit: OnCommit, command_ids: list[str]) -> dict[str, float]:
        """Publishes the due commands' progress; per command still running, 0 when it was
        published now, else the seconds until it is due (another process published it)."""
        waits: dict[str, float] = {}
        committed: list[outbox.Committed] = []
        async with pool.acquire() as conn:
            for row in await conn.fetch(_WHERE, command_ids):
                command_id = row["command_id"]
                if row["done"]:
                    continue
                if row["since"] < self._interval:
                    waits[command_id] = max(self._interval - row["since"], 0.05)
                    continue
                async with conn.transaction():
                    counted = await add_progress.count(conn, command_id, add_progress.Rows(row["rows"], row["created"], row["refused"]))
                    done = counted.progress.done
                    published_at = await conn.fetchval(_DUE, command_id, self._interval, done)
                    if published_at is None:
                        waits[command_id] = self._interval  # another process published it meanwhile
                        continue
                    event = UsersAddProgress(command_id=command_id, account_id=row["account_id"], progress=counted.progress, done=done,
                                             published_at=published_at)
                    committed += await outbox.write(conn, [OutgoingMessage.event(event, row["correlation_id"])])
                if not done:
                    waits[command_id] = 0.0
        on_commit(committed)
        return waits
