from __future__ import annotations

import re

import asyncpg

from contracts import routing
from tests.integration.conftest import address, scrape
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov.runtime.housekeeping import prune_inbox
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestMetrics:
    """A worker serves Prometheus metrics: messages by outcome, emails, relayed events."""

    async def test_scrape(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("metrics")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Me", "last_name": "Trics", "email": person}]})
        await emails_to(smtp, person)

        done = re.compile(r'userprov_messages_total\{[^}]*outcome="done"[^}]*\} [1-9]')
        text = await eventually(lambda: (t := scrape()) and done.search(t) and t, 20)
        assert "userprov_outbox_relayed_total" in text
        assert re.search(r"^userprov_outbox_lag_seconds [0-9.e+-]+$", text, re.MULTILINE)
        assert "userprov_broker_connections_total" in text
        assert "userprov_message_handling_seconds_bucket" in text


class TestQueueMetrics:
    """Parked messages per service and consumers per queue are in the metrics."""

    async def test_parked_and_consumers(self, bus: BusClient) -> None:
        def parked() -> float:
            found = re.search(r'^userprov_parked_messages\{service="user-creation"\} ([0-9.e+]+)$', scrape(), re.MULTILINE)
            return float(found.group(1)) if found else -1.0

        before = await eventually(lambda: (value := parked()) >= 0 and value + 1, 30, what="the parked gauge") - 1
        await bus.publish_raw(routing.USERS_ADD, b"{not json")  # refused as malformed_json: parked
        await eventually(lambda: parked() >= before + 1, 60, 0.5, what="one more parked message")
        consumers = re.search(r'^userprov_queue_consumers\{queue="userprov.invitation-mailing"\} ([0-9.e+]+)$', scrape(), re.MULTILINE)
        assert consumers and float(consumers.group(1)) == 2.0  # the two worker processes


class TestInboxRetention:
    """Processed message ids older than the retention are pruned; recent ones stay."""

    async def test_prune(self, db: asyncpg.Pool) -> None:
        await db.execute(
            "INSERT INTO inbox (service, message_id, processed_at) VALUES"
            " ('test', 'old-1', now() - interval '20 days'), ('test', 'old-2', now() - interval '15 days'),"
            " ('test', 'recent', now() - interval '13 days')")
        await db.execute(
            "INSERT INTO delivery_failures (service, message_id, error_type, error_message, first_failure, last_failure) VALUES"
            " ('test', 'old-f', 'E', 'm', now() - interval '20 days', now() - interval '20 days'), ('test', 'recent-f', 'E', 'm', now(), now())")
        assert await prune_inbox(db, retention_days=14) >= 3
        left = {r["message_id"] for r in await db.fetch("SELECT message_id FROM inbox WHERE service = 'test'")}
        assert left == {"recent"}
        failures_left = {r["message_id"] for r in await db.fetch("SELECT message_id FROM delivery_failures WHERE service = 'test'")}
        assert failures_left == {"recent-f"}
