"""The README's example messages, written from contracts/examples.py (the examples the AsyncAPI
document carries, each validated against its model), so that the README cannot drift from the
contracts: python -m userprov_devtools.readme_examples"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from contracts import examples
from contracts.registry import COMMAND_MODELS, CONSUMER_OF, EVENT_MODELS, INTERNAL_EVENTS, REPLY_MODELS, RESPONSES, reply_type

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- example messages: written by `python -m userprov_devtools.readme_examples` from contracts/examples.py -->"
END = "<!-- end of example messages -->"


def groups() -> list[tuple[str, list[str]]]:
    """(title, message names) for integrators; userprov's own hand-offs are left out."""
    incoming_events = [k for k in EVENT_MODELS if k in CONSUMER_OF and k not in INTERNAL_EVENTS]
    return [
        ("Commands (`userprov.commands`)", [k for k in COMMAND_MODELS if k not in REPLY_MODELS]),
        ("Queries (`userprov.commands`, with `reply_to`) and their answers",
         [name for k in REPLY_MODELS for name in (k, reply_type(k))]),
        ("Responses from link handlers (`userprov.responses`)", [k for k in incoming_events if k in RESPONSES]),
        ("Events to userprov (`userprov.events`)", [k for k in incoming_events if k not in RESPONSES]),
        ("Events from userprov (`userprov.events`)",
         [k for k in EVENT_MODELS if k not in incoming_events and k not in INTERNAL_EVENTS]),
    ]


def _json(payload: object) -> str:
    flat = json.dumps(payload, ensure_ascii=False)
    return flat if len(flat) <= 100 else json.dumps(payload, ensure_ascii=False, indent=2)


def section() -> str:
    lines = [START, ""]
    for title, names in groups():
        lines += ["<details>", f"<summary>{title}</summary>", ""]
        for name in names:
            lines += [f"`{name}`", "", "```json", _json(examples.PAYLOADS[name]), "```", ""]
        lines += ["</details>", ""]
    lines.append(END)
    return "\n".join(lines)


def with_section(readme: str) -> str:
    """The README with its examples section written anew (between the markers)."""
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + section() + readme[end:]


def main() -> int:
    text = README.read_text(encoding="utf-8")
    README.write_text(with_section(text), encoding="utf-8")
    print(f"wrote the example messages into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
