"""Writes the AsyncAPI 3 document and one JSON Schema per message, generated from the models.

Run `python -m contracts.schema_export` after changing a model; a test fails when the
committed files are stale.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts import registry, routing
from contracts.base import Contract

GENERATED = Path(__file__).parent / "generated"
USERPROV_CONSUMES = set(registry.CONSUMER_OF)


def _messages() -> dict[str, type[Contract]]:
    replies = {f"{key}.reply": model for key, model in registry.REPLY_MODELS.items()}
    return registry.COMMAND_MODELS | registry.EVENT_MODELS | replies


def message_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in _messages().items()}


def _channel(address: str) -> dict[str, Any]:
    return {
        "address": address,
        "messages": {},
        "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": address, "type": "topic", "durable": True}}},
    }


def asyncapi_document() -> dict[str, Any]:
    models = _messages()
    _, definitions = models_json_schema(
        [(model, "validation") for model in models.values()], ref_template="#/components/schemas/{model}"
    )
    channel_of_exchange = {routing.COMMANDS_EXCHANGE: "commands", routing.EVENTS_EXCHANGE: "events", routing.INTERNAL_EXCHANGE: "internal"}
    channels = {channel: _channel(exchange) for exchange, channel in channel_of_exchange.items()}
    channels["internal"]["description"] = "userprov's own hand-offs between its services; not for integrators."
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, model in models.items():
        key = name.replace(".", "_")
        messages[key] = {
            "name": name,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"amqp": {"messageType": name}},
        }
        if name.endswith(".reply"):
            continue
        channel = channel_of_exchange[registry.exchange_of(name)]
        channels[channel]["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        operations[key] = {
            "action": "receive" if name in USERPROV_CONSUMES else "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"}],
            "bindings": {"amqp": {"cc": [name]}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "userprov",
            "version": "1.0.0",
            "description": "Adds users to organisation accounts. Every message carries the AMQP properties "
            "message_id (idempotency key), correlation_id (copied onto every event it causes), type "
            "(the routing key) and timestamp. Queries are answered to reply_to.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0-9-1"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": definitions["$defs"]},
    }


def rendered_files() -> dict[Path, str]:
    files = {GENERATED / "asyncapi.json": _dump(asyncapi_document())}
    for name, schema in message_schemas().items():
        files[GENERATED / "schemas" / f"{name}.json"] = _dump(schema)
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    files = rendered_files()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {GENERATED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
