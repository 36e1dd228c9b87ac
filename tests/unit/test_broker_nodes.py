"""Several RabbitMQ nodes in USERPROV_AMQP_URL: how they are read and named, never with credentials."""
from __future__ import annotations

import pytest

from userprov.broker_nodes import NoNodeAnswered, broker_urls, node_of, vhost_of
from userprov.public_bus import amqp_user
from userprov.runtime.broker import broker_failure
from userprov.settings import Settings

NODES = "amqp://u:p%2Cq@rabbit-0:5672/prod, amqp://u:p%2Cq@rabbit-1:5673/prod,,amqp://u:p%2Cq@rabbit-2/prod"


def test_each_node_with_its_host_and_port() -> None:
    assert [node_of(url) for url in broker_urls(NODES)] == ["rabbit-0:5672", "rabbit-1:5673", "rabbit-2:5672"]
    assert vhost_of(broker_urls(NODES)[0]) == "prod" and vhost_of("amqp://h/") == "/"
    assert amqp_user(NODES) == "u"
    with pytest.raises(ValueError):
        broker_urls(" , ")


def test_the_first_log_line_names_every_node_and_no_password() -> None:
    endpoints = Settings(amqp_url=NODES).endpoints()
    assert endpoints["broker"] == "rabbit-0:5672, rabbit-1:5673, rabbit-2:5672 vhost prod"
    assert "p%2Cq" not in str(endpoints)


def test_when_no_node_answers_each_says_why() -> None:
    error = NoNodeAnswered([("amqp://u:secret@rabbit-0:5672/v", ConnectionRefusedError(111, "Connection refused")),
                            ("amqp://u:secret@rabbit-1:5672/v", TimeoutError())])
    said = broker_failure(error, NODES)
    assert said.startswith("no RabbitMQ node answered: nothing takes connections at rabbit-0:5672")
    assert "RabbitMQ at rabbit-1:5672 did not answer in time" in said and "secret" not in said
