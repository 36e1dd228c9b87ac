"""Adds people to an account through userprov's wire interface, with aio-pika alone, and prints
the outcome: what a client in Python needs, without userprov's code.

    pip install aio-pika
    USERPROV_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
        python examples/publish_users_add.py acme-42 "Ada Lovelace ada@example.com; Alan Turing alan@example.com" \
        --product gotomeeting

The same arguments as examples/node/publish-users-add.mjs: the account, the pasted list,
--product (-p) for each licence each person gets, --requested-by EMAIL, --timeout SECONDS. Exit
status 0 when every row is in the account, 1 when a row or the command was refused, 2 when no
outcome came in time. Without --requested-by, userprov takes the command only from a trusted
platform service: a RabbitMQ user its workers' USERPROV_TRUSTED_PUBLISHERS names (every user
while that is unset), sent as the message's user_id."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from urllib.parse import unquote, urlsplit

import aio_pika

COMMANDS = "userprov.commands"
EVENTS = "userprov.events"
OUTCOMES = ("users.add.completed", "command.rejected")  # the events that end a users.add


async def add(amqp_url: str, body: dict, timeout: float) -> tuple[str, dict]:
    """Publishes a users.add and returns its outcome event: (routing key, body)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # a queue of our own for the outcome, bound before publishing so that it cannot be missed
        outcomes = await channel.declare_queue(exclusive=True, auto_delete=True)
        events = await channel.get_exchange(EVENTS, ensure=False)  # the workers declare it
        for key in OUTCOMES:
            await outcomes.bind(events, key)

        message_id = str(uuid.uuid4())  # the idempotency key: publish again with the same id when unsure
        commands = await channel.get_exchange(COMMANDS, ensure=False)
        await commands.publish(
            aio_pika.Message(
                json.dumps(body).encode(), message_id=message_id, correlation_id=message_id, type="users.add",
                content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id=unquote(urlsplit(amqp_url).username or "guest"),  # RabbitMQ checks it is the connection's user
            ),
            routing_key="users.add", mandatory=True,
        )  # returns once RabbitMQ confirmed it has the message

        async def first_outcome() -> tuple[str, dict]:
            async with outcomes.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        if message.correlation_id == message_id:  # events carry the command's correlation id
                            return message.routing_key or "", json.loads(message.body)
            raise ConnectionError("the connection closed before the outcome came")

        return await asyncio.wait_for(first_outcome(), timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description="Publish a users.add and print its outcome.")
    parser.add_argument("account_id")
    parser.add_argument("pasted", help='entries "First Last email", separated by ";" or line breaks')
    parser.add_argument("--product", "-p", action="append", default=[], help="a licence each person gets (repeatable)")
    parser.add_argument("--requested-by", help="email of the account's admin or manager who adds them")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcome")
    args = parser.parse_args()

    body = {"account_id": args.account_id, "pasted": args.pasted, "products": args.product}
    if args.requested_by:
        body["requested_by"] = args.requested_by
    amqp_url = os.environ.get("USERPROV_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        routing_key, outcome = asyncio.run(add(amqp_url, body, args.timeout))
    except TimeoutError:
        print(f"no outcome within {args.timeout:g} s: are userprov's workers running on this vhost?", file=sys.stderr)
        return 2
    if routing_key == "command.rejected":
        print(f"refused: {outcome['reason']}: {outcome['message']}", file=sys.stderr)
        for error in outcome["errors"]:
            print(f"  {error['field']}: {error['code']}: {error['message']}", file=sys.stderr)
        return 1
    for row in outcome["results"]:
        errors = "; ".join(f"{e['field']}: {e['code']}" for e in row["errors"])
        print(f"row {row['row']}: {row['outcome']:<14} {row['email']} {errors}".rstrip())
    return 1 if any(row["outcome"] == "rejected" for row in outcome["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
