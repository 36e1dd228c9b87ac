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

from contracts import examples, registry, routing
from contracts.base import Contract

GENERATED = Path(__file__).parent / "generated"
USERPROV_CONSUMES = set(registry.CONSUMER_OF)


def _messages() -> dict[str, type[Contract]]:
    replies = {f"{key}.reply": model for key, model in registry.REPLY_MODELS.items()}
    return registry.COMMAND_MODELS | registry.EVENT_MODELS | replies


SCHEMA_BASE = "https://userprov.example.com/schemas/"
AMQP_BINDING_VERSION = "0.3.0"


def message_schemas() -> dict[str, dict[str, Any]]:
    """Each message's JSON Schema (draft 2020-12), with its `$schema` and `$id`."""
    return {
        name: {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{SCHEMA_BASE}{name}.json",
               **model.model_json_schema()}
        for name, model in _messages().items()
    }


def amqp_properties() -> dict[str, Any]:
    """The AMQP basic properties every message carries, as AsyncAPI message headers."""
    text = {"type": "string", "minLength": 1, "maxLength": 255}
    return {
        "type": "object",
        "required": ["message_id"],
        "properties": {
            "message_id": {**text, "description": "Required on everything sent to userprov: the idempotency key of a "
                           "command (use a UUID); set by userprov on everything it publishes."},
            "correlation_id": {**text, "description": "Copied onto every event a message causes, and onto the answer to "
                               "a query; the message's own message_id when it has none."},
            "reply_to": {**text, "description": "Queries only (required there): the queue to answer to."},
            "type": {"type": "string", "description": "The message name: its routing key, or `<query>.reply` for an "
                     "answer, or `command.rejected` for a refused query's answer."},
            "timestamp": {"type": "integer", "description": "When userprov published it: seconds since the Unix epoch "
                          "(AMQP's timestamp property); optional on messages sent to userprov."},
            "content_type": {"const": "application/json"},
            "delivery_mode": {"const": 2, "description": "Persistent."},
            "traceparent": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                            "description": "Optional, in the AMQP headers table: W3C trace context. userprov copies it "
                            "(or, with tracing on, its own span's) onto every event and answer the message causes; a "
                            "malformed one is ignored."},
            "tracestate": {"type": "string", "maxLength": 512,
                           "description": "Optional, in the AMQP headers table, only beside a traceparent: W3C trace "
                           "state, passed on with it."},
        },
    }


def _channel(address: str | None, description: str, exchange: bool = True) -> dict[str, Any]:
    channel: dict[str, Any] = {"address": address, "description": description, "messages": {}}
    if exchange and address is not None:
        channel["bindings"] = {"amqp": {
            "is": "routingKey",
            "exchange": {"name": address, "type": "topic", "durable": True, "autoDelete": False},
            "bindingVersion": AMQP_BINDING_VERSION,
        }}
    return channel


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


def asyncapi_document() -> dict[str, Any]:
    models = _messages()
    _, definitions = models_json_schema(
        [(model, "validation") for model in models.values()], ref_template="#/components/schemas/{model}"
    )
    channel_of_exchange = {routing.COMMANDS_EXCHANGE: "commands", routing.EVENTS_EXCHANGE: "events", routing.INTERNAL_EXCHANGE: "internal",
                           routing.RESPONSES_EXCHANGE: "responses"}
    channels = {
        "commands": _channel(routing.COMMANDS_EXCHANGE, "Commands and queries to userprov (topic exchange, routed by name). Its"
                             f" alternate exchange is {routing.UNROUTED_COMMANDS_EXCHANGE} (declared with the argument"
                             " alternate-exchange): a message of an unknown routing key is refused with command.rejected"
                             " (unknown_type), also on reply_to when it names one, and parked. Publish with confirms."),
        "events": _channel(routing.EVENTS_EXCHANGE, "Events from userprov, and those userprov consumes (topic exchange)."),
        "internal": _channel(routing.INTERNAL_EXCHANGE, "userprov's own hand-offs between its services; not for integrators."),
        "responses": _channel(routing.RESPONSES_EXCHANGE, "Accepts and declines from the link handlers, each with its token"
                              " (topic exchange): only link handlers may write to it and only userprov reads it."),
        "replies": _channel(None, "The queue a query named in reply_to, reached through the default exchange.", exchange=False),
    }
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, model in models.items():
        key = name.replace(".", "_")
        messages[key] = {
            "name": name,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
            "contentType": "application/json",
            "headers": _ref("components", "schemas", "AmqpProperties"),
            "correlationId": _ref("components", "correlationIds", "correlation"),
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": name, "bindingVersion": AMQP_BINDING_VERSION}},
            "examples": [{"name": name, "headers": examples.properties(name), "payload": examples.PAYLOADS[name]}],
        }
        if name.endswith(".reply"):
            channels["replies"]["messages"][key] = _ref("components", "messages", key)
            continue
        channel = channel_of_exchange[registry.exchange_of(name)]
        channels[channel]["messages"][key] = _ref("components", "messages", key)
        operations[key] = {
            "action": "receive" if name in USERPROV_CONSUMES else "send",
            "channel": _ref("channels", channel),
            "messages": [_ref("channels", channel, "messages", key)],
            "bindings": {"amqp": {"cc": [name], "deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
        }
        deprecated = registry.DEPRECATED_EXCHANGE.get(name)
        if deprecated is not None:
            old = channel_of_exchange[deprecated]
            channels[old]["messages"][key] = _ref("components", "messages", key)
            operations[f"{key}_deprecated"] = {
                **operations[key],
                "channel": _ref("channels", old),
                "messages": [_ref("channels", old, "messages", key)],
                "description": f"Deprecated: publish {name} on {registry.exchange_of(name)} instead. userprov still consumes it"
                f" from {deprecated} in this version, where every integrator bound to it could read its token.",
                "x-deprecated": True,
            }
        if name in registry.REPLY_MODELS:
            operations[key]["reply"] = {
                "address": {"location": "$message.header#/reply_to", "description": "The query's reply_to."},
                "channel": _ref("channels", "replies"),
                "messages": [_ref("channels", "replies", "messages", registry.reply_type(name).replace(".", "_")),
                             _ref("channels", "replies", "messages", "command_rejected")],
            }
    for keys in routing.HANDED_TO_BULK.values():
        for name in keys:
            key = name.replace(".", "_")
            channels["internal"]["messages"][key] = _ref("components", "messages", key)
            operations[f"{key}_handed_to_bulk"] = {
                **operations[key],
                "channel": _ref("channels", "internal"),
                "messages": [_ref("channels", "internal", "messages", key)],
                "description": f"userprov's own: a worker in the interactive lane republishes a large {name} here, unchanged"
                f" but for the header x-userprov-trusted-publisher, for the bulk lane ({routing.bulk_queue_name('<service>')}).",
            }
    channels["replies"]["messages"]["command_rejected"] = _ref("components", "messages", "command_rejected")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "userprov",
            "version": "2.0.0",
            "description": "Adds users to organisation accounts. Every message carries the AMQP properties in its "
            "headers (message_id required: the idempotency key); correlation_id is copied onto every event a message "
            "causes. Queries are answered to reply_to with the query's correlation_id.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0-9-1"}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {**definitions["$defs"], "AmqpProperties": amqp_properties()},
            "correlationIds": {"correlation": {
                "description": "The caller's correlation_id, copied onto every event and answer its message causes.",
                "location": "$message.header#/correlation_id",
            }},
        },
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
