"""The documentation's reference pages, written from the code as the site builds, so that they
cannot drift from it: every setting (userprov.settings.Settings), every command and option of the
`userprov` command (its typer app), every message with its fields and example (contracts), every
metric (the prometheus_client objects of services/userprov) and alert (deploy/prometheus), the
SCIM service's declared schema (userprov.scim.resources) and the membership statuses with their
arrows (userprov.lifecycle). docs/_ext/userprov_reference.py calls `write` at each build;
`python -m userprov_devtools.reference_docs DIR` writes the pages alone.

Each page is MyST Markdown. Settings are `envvar` entries, commands and options `program` and
`option` entries, messages and metrics targets of their own (`message`, `metric`): the
hand-written pages link to them with those roles, and a strict build fails on a link to a name
the code no longer has."""
from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ENV_PREFIX = "USERPROV_"


def cell(text: object) -> str:
    """Text for one cell of a Markdown table: one line, its pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(value: object) -> str:
    text = str(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


# -- settings


def setting_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(code(m.value) for m in annotation)
    names = {str: "text", int: "integer", float: "number", bool: "`true` or `false`", Path: "a directory",
             SecretStr: "text (secret)"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, enum.Enum):
        return code(value.value)
    return code(value)


def _bounds(info: FieldInfo) -> str:
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    found = [f"{words[name]} {getattr(m, name)}" for m in info.metadata for name in words if hasattr(m, name)]
    return ", ".join(found)


def settings_page() -> str:
    from userprov.settings import Settings

    lines = ["# Settings", "",
             "Every setting, from `userprov.settings.Settings`: the environment variable, its type, its default and what"
             " it does. A variable set to the empty string counts as unset: the default applies.", ""]
    for field, info in Settings.model_fields.items():
        facts = [f"**Default:** {_default(info)}", f"**Type:** {_type_name(info.annotation)}"]
        if bounds := _bounds(info):
            facts.append(f"**Bounds:** {bounds}")
        lines += [f"```{{envvar}} {setting_name(field)}", " · ".join(facts), "", info.description or "", "```", ""]
    return "\n".join(lines)


# -- the command line


def _is_argument(param: Any) -> bool:
    return param.param_type_name == "argument"


def commands() -> Iterator[tuple[str, Any]]:
    """(its full name, the command) of `userprov` and each of its commands and groups, depth first, in the
    order they are declared."""
    import typer

    from userprov.cli import app

    # typer carries a click of its own: its commands and parameters are told apart by what they have
    def walk(name: str, command: Any) -> Iterator[tuple[str, Any]]:
        yield name, command
        if hasattr(command, "commands"):
            for sub_name, sub in command.commands.items():
                yield from walk(f"{name} {sub_name}", sub)

    yield from walk("userprov", typer.main.get_command(app))


def _context(command: Any, name: str) -> Any:
    """A context for the command as `name` (its full name), for typer's own help text."""
    import typer

    from userprov.cli import app

    root = typer.main.get_command(app)
    return type(root.make_context("userprov", [], resilient_parsing=True))(command, info_name=name)


def parameters(command: Any) -> list[Any]:
    return [p for p in command.params if p.name != "help" and not p.hidden]


def parameter_target(param: Any) -> str:
    """What an `option` entry is named: its flags, or an argument's name in capitals."""
    return param.name.upper() if _is_argument(param) else ", ".join([*param.opts, *param.secondary_opts])


VALUE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH"}


def parameter_value(param: Any) -> str:
    """What a parameter takes, as command-line references write it (`TEXT`, `INTEGER`, `FLOAT`,
    choices as `a|b`), with its range in words; "" for a flag. typer's own help shows Python's
    names instead (`<list[str]>`, `<float range>`)."""
    if getattr(param, "is_flag", False):
        return ""
    if param.metavar:
        return code(param.metavar)
    described = param.type_descriptor
    annotation = described.annotation
    if typing.get_origin(annotation) is list:
        [annotation] = typing.get_args(annotation)
    name = "|".join(map(str, described.choices)) if described.is_choice else VALUE_NAMES.get(annotation, annotation.__name__.upper())
    low, high = described.parameter_info.min, described.parameter_info.max
    if low is not None and high is not None:
        return f"{code(name)}, {low} to {high}"
    if low is not None or high is not None:
        return f"{code(name)}, at least {low}" if low is not None else f"{code(name)}, at most {high}"
    return code(name)


def cli_page() -> str:
    lines = ["# Command line", "",
             "Every command of `userprov` and every option and argument, from its typer app (`userprov.cli`), as its"
             " `--help` says them.", ""]
    for name, command in commands():
        depth = min(name.count(" ") + 2, 4)
        context = _context(command, name)
        usage = command.get_usage(context).removeprefix("Usage: ")
        lines += [f"{'#' * depth} {name}", "", f"```{{program}} {name}", "```", "", f"`{usage}`", "",
                  (command.help or "").strip(), ""]
        for param in parameters(command):
            help_text = (param.get_help_record(context) or ("", ""))[1]
            value = parameter_value(param)
            facts = [f"**Value:** {value}"] if value else []
            if _is_argument(param):
                facts.append("argument" + (", any number" if param.nargs == -1 else ""))
            elif param.multiple:
                facts.append("repeatable")
            lines += [f"```{{option}} {parameter_target(param)}", *([" · ".join(facts), ""] if facts else []), help_text,
                      "```", ""]
    return "\n".join(lines)


# -- the messages


def _messages() -> dict[str, type[BaseModel]]:
    from contracts.schema_export import _messages as messages

    return messages()  # type: ignore[return-value]


def _schema_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name, {})
        return _schema_type(target, defs) if "enum" in target or target.get("type") != "object" else name
    if "anyOf" in schema:
        return " or ".join(_schema_type(s, defs) for s in schema["anyOf"])
    if "enum" in schema:
        return " or ".join(code(json.dumps(v)) for v in schema["enum"])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}), defs)}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"map of {_schema_type(schema['additionalProperties'], defs)}"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _fields_table(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return ["No fields: the body is `{}`.", ""]
    required = set(schema.get("required", ()))
    lines = ["| field | type | | description |", "|---|---|---|---|"]
    for name, prop in properties.items():
        target = defs.get(prop.get("$ref", "").rsplit("/", 1)[-1], {})
        description = prop.get("description") or target.get("description", "")
        lines.append(f"| `{name}` | {cell(_schema_type(prop, defs))} | {'required' if name in required else 'optional'}"
                     f" | {cell(description)} |")
    return [*lines, ""]


def message_groups() -> list[tuple[str, str, list[str]]]:
    """(title, what it is, message names) of the public interface, then userprov's own hand-offs."""
    from contracts.registry import COMMAND_MODELS, CONSUMER_OF, EVENT_MODELS, INTERNAL_EVENTS, REPLY_MODELS, RESPONSES, reply_type

    incoming_events = [k for k in EVENT_MODELS if k in CONSUMER_OF and k not in INTERNAL_EVENTS]
    return [
        ("Commands", "Published on `userprov.commands`; each is answered by an event (or `command.rejected`).",
         [k for k in COMMAND_MODELS if k not in REPLY_MODELS]),
        ("Queries and their answers", "Published on `userprov.commands` with `reply_to`; the answer comes to that queue"
         " with the AMQP `type` `<query>.reply`.", [name for k in REPLY_MODELS for name in (k, reply_type(k))]),
        ("Responses from link handlers", "Published on `userprov.responses`, each with a token.",
         [k for k in incoming_events if k in RESPONSES]),
        ("Events to userprov", "Published by the platform's products on `userprov.events`.",
         [k for k in incoming_events if k not in RESPONSES]),
        ("Events from userprov", "Published by userprov on `userprov.events`: bind a queue of yours to those you need.",
         [k for k in EVENT_MODELS if k not in incoming_events and k not in INTERNAL_EVENTS]),
        ("userprov's own hand-offs", "Signals between userprov's services on `userprov.internal`: not for integrators,"
         " listed for operators.", sorted(INTERNAL_EVENTS)),
    ]


def _routing(name: str) -> str:
    from contracts.registry import CONSUMER_OF, REPLY_MODELS, exchange_of

    if name.endswith(".reply") and name.removesuffix(".reply") in REPLY_MODELS:
        return f"The answer to `{name.removesuffix('.reply')}`, sent to the query's `reply_to` queue (AMQP `type` `{name}`)."
    where = f"Routing key `{name}` on `{exchange_of(name)}`"
    consumer = CONSUMER_OF.get(name)
    return where + (f", consumed by {consumer}." if consumer else ".")


def messages_page() -> str:
    from contracts import examples
    from contracts.schema_export import message_schemas

    schemas = message_schemas()
    lines = ["# Messages", "",
             "Every message on the wire, from the contracts (`contracts/`): its routing key and exchange, who consumes it,"
             " each field of its body, and a complete example (the AsyncAPI document's, validated against its model by"
             " the tests). The JSON Schema of each is `contracts/generated/schemas/<name>.json`; the"
             " [wire interface](wire.md) says how to publish and what every message carries.", ""]
    for title, about, names in message_groups():
        lines += [f"## {title}", "", about, ""]
        for name in names:
            schema = schemas[name]
            defs = schema.get("$defs", {})
            lines += [f"### {name}", "", f"```{{message}} {name}", "```", "", _routing(name), "",
                      " ".join((schema.get("description") or "").split()), "", *_fields_table(schema, defs)]
            nested = [d for d in defs.values() if d.get("type") == "object" and d.get("properties")]
            for definition in nested:
                lines += [f"`{definition.get('title', '')}`: {cell(definition.get('description', ''))}", "",
                          *_fields_table(definition, defs)]
            if name in examples.PAYLOADS:
                lines += ["```json", json.dumps(examples.PAYLOADS[name], ensure_ascii=False, indent=2), "```", ""]
    return "\n".join(lines)


# -- metrics and alerts


def metrics() -> list[Any]:
    """Every prometheus_client metric of services/userprov, found by importing each of its modules."""
    from prometheus_client.metrics import MetricWrapperBase

    import userprov

    found: dict[str, Any] = {}
    for module in pkgutil.walk_packages(userprov.__path__, "userprov."):
        if module.name.endswith("__main__"):
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, MetricWrapperBase) and value._name.startswith("userprov_"):
                found[value._name] = value
    return [found[name] for name in sorted(found)]


def metric_name(metric: Any) -> str:
    """The name Prometheus stores: a counter's with `_total`."""
    return metric._name + ("_total" if metric._type == "counter" else "")


def alert_rules() -> list[dict[str, Any]]:
    return yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]


def metrics_page() -> str:
    lines = ["# Metrics and alerts", "",
             "Every metric userprov exports, from the metric definitions in `services/userprov`. A worker serves them on"
             " {envvar}`USERPROV_METRICS_PORT` (`/metrics`), and so does `userprov scim serve`, only there: never on the SCIM"
             " port the identity providers reach."
             " A histogram's series are `<name>_bucket`, `_count` and `_sum`.", "",
             "## Metrics", ""]
    for metric in metrics():
        name = metric_name(metric)
        labels = ", ".join(f"`{label}`" for label in metric._labelnames) or "none"
        lines += [f"### {name}", "", f"```{{metric}} {name}", "```", "",
                  f"**Type:** {metric._type} · **Labels:** {labels}", "", metric._documentation, ""]
    lines += ["## Alerts", "",
              "The alerting rules of `deploy/prometheus/alerts.yaml` (load it as a rules file; `deploy/k8s/monitoring/`"
              " wraps it in a PrometheusRule). Each links to its part of the [runbook](../how-to/runbook.md).", ""]
    for rule in alert_rules():
        annotations = rule.get("annotations", {})
        runbook = annotations.get("runbook_url", "").split("#", 1)[-1]
        lines += [f"### {rule['alert']}", "",
                  f"**Severity:** {rule['labels']['severity']} · **For:** {rule.get('for', '0m')} · "
                  f"**Runbook:** [{runbook}](../how-to/runbook.md#{runbook})", "",
                  annotations.get("description") or annotations.get("summary", ""), "",
                  "```text", " ".join(str(rule["expr"]).split()), "```", ""]
    return "\n".join(lines)


# -- SCIM


def _scim_attributes(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo, type[BaseModel]]]:
    for name, info in model.model_fields.items():
        if name == "schemas":
            continue
        alias = info.serialization_alias or name
        yield prefix + alias, info, model
        inner = [a for a in typing.get_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        for arg in typing.get_args(info.annotation):
            inner += [a for a in typing.get_args(arg) if isinstance(a, type) and issubclass(a, BaseModel)]
        if inner and name not in ("meta",):
            yield from _scim_attributes(inner[0], f"{prefix}{alias}.")


def _annotation_word(info: FieldInfo, kind: type) -> str:
    for meta in info.metadata:
        if isinstance(meta, kind):
            return str(getattr(meta, "value", meta))
    return ""


COMMON_ATTRIBUTES = ("id", "externalId", "meta")  # RFC 7643 §3.1: every resource's, not part of its schema


def _scim_rows(model: type[BaseModel]) -> list[str]:
    from scim2_models import Mutability, Required, Returned

    rows = []
    for path, info, _ in _scim_attributes(model):
        if path in COMMON_ATTRIBUTES:
            continue
        required = _annotation_word(info, Required) == "True"
        mutability = _annotation_word(info, Mutability) or "readWrite"
        returned = _annotation_word(info, Returned) or "default"
        rows.append(f"| `{path}` | {'yes' if required else 'no'} | {mutability} | {returned} | {cell(info.description or '')} |")
    return rows


def scim_page() -> str:
    from userprov.scim.resources import CONFIG, EnterpriseUser, User

    header = ["| attribute | required | mutability | returned | description |", "|---|---|---|---|---|"]
    extension = EnterpriseUser.__schema__
    lines = ["# SCIM schema", "",
             "What `userprov scim serve` declares in `/Schemas` (`userprov.scim.resources`): every attribute of the core"
             " `User` schema and of the enterprise extension, so that an identity provider's default body is taken."
             " What userprov keeps is declared as it keeps it; every other attribute is accepted and not kept:"
             " `writeOnly` or `readOnly`, and returned `never` (the tables say which). A `readOnly` attribute"
             " sent in a POST or PUT is ignored, and a PATCH of it refused (`400 mutability`). An attribute of"
             " neither schema, a schema not declared, or a sub-attribute a schema does not have is refused"
             " (`400 invalidSyntax`), never dropped in silence. How requests map onto userprov's commands:"
             " [SCIM service](scim.md).", "",
             "## User attributes", "",
             f"`{User.__schema__}`. Every resource also has the common attributes `id`, `externalId` and `meta`"
             " (RFC 7643 §3.1), which are not part of a schema: how userprov keeps them is in"
             " [SCIM service](scim.md#what-scim-keeps).", "",
             *header, *_scim_rows(User), "",
             "## Enterprise extension", "",
             f"`{extension}`: optional in each request (`/ResourceTypes` says so). A body sends it as an object of"
             f' that name (`"{extension}": {{"department": "..."}}`); a PATCH path names one of its attributes as'
             f" `{extension}:department`.", "",
             *header, *_scim_rows(EnterpriseUser), ""]
    config = CONFIG
    lines += ["## Service provider configuration", "", "What `/ServiceProviderConfig` answers.", "",
              "| feature | supported |", "|---|---|",
              f"| PATCH | {'yes' if config.patch and config.patch.supported else 'no'} |",
              f"| filter | {'yes, at most ' + str(config.filter.max_results) + ' results' if config.filter and config.filter.supported else 'no'} |",
              f"| bulk | {'yes' if config.bulk and config.bulk.supported else 'no'} |",
              f"| sort | {'yes' if config.sort and config.sort.supported else 'no'} |",
              f"| ETags | {'yes' if config.etag and config.etag.supported else 'no'} |",
              f"| password change | {'yes' if config.change_password and config.change_password.supported else 'no'} |",
              "", "Authentication: " + "; ".join(f"{s.name}: {s.description}" for s in config.authentication_schemes or ()), ""]
    return "\n".join(lines)


# -- the lifecycle


def lifecycle_page() -> str:
    from contracts.base import MembershipStatus
    from userprov import lifecycle

    statuses = typing.get_args(MembershipStatus)
    dot = ["digraph lifecycle {", '  rankdir=TB; bgcolor="transparent";',
           '  node [shape=box, style="rounded", fontname="sans-serif", fontsize=11];',
           '  edge [fontname="sans-serif", fontsize=9];', '  start [shape=point, label=""];']
    dot += [f'  "{status}";' for status in statuses]
    rows = ["| from | to | by | made by |", "|---|---|---|---|"]
    for entry in lifecycle.ENTRIES:
        dot.append(f'  start -> "{entry.target}" [label="{entry.by}"];')
        rows.append(f"| (new) | {code(entry.target)} | {cell(entry.by)} | {', '.join(f'`lifecycle.{f}`' for f in entry.functions)} |")
    for n, arrow in enumerate(lifecycle.ARROWS):
        if len(arrow.sources) > 2:  # "any of these": one note, not an arrow from each
            listed = "\\n".join(arrow.sources)
            dot.append(f'  many{n} [shape=note, style="", fontsize=9, label="{listed}"];')
            dot.append(f'  many{n} -> "{arrow.target}" [label="{arrow.by}"];')
        else:
            for source in arrow.sources:
                dot.append(f'  "{source}" -> "{arrow.target}" [label="{arrow.by}"];')
        rows.append(f"| {', '.join(code(s) for s in arrow.sources)} | {code(arrow.target)} | {cell(arrow.by)} |"
                    f" {', '.join(f'`lifecycle.{f}`' for f in arrow.functions)} |")
    dot.append("}")
    lines = ["# Membership statuses", "",
             "Every status a membership can have and every change between them, from `userprov/lifecycle.py`, where"
             " each change is one function (the last column).", "",
             "```{graphviz}", *dot, "```", "", *rows, ""]
    return "\n".join(lines)


PAGES = {
    "settings.md": settings_page,
    "cli.md": cli_page,
    "messages.md": messages_page,
    "metrics.md": metrics_page,
    "scim-schema.md": scim_page,
    "lifecycle.md": lifecycle_page,
}


def write(folder: Path) -> list[Path]:
    """Writes each generated page into `folder` (a file is rewritten only when it changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, page in PAGES.items():
        path = folder / name
        text = page()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "_generated")):
        print(path)
