"""The Jinja2 environment every template renders in: the immutable sandbox with no globals
(`range`, `lipsum`, `cycler`, ... are gone), so a template sees only the variables it is given,
and reaching for an internal attribute (`''.__class__`) is an error rather than an empty string,
so the trial render at `accounts.upsert` refuses such a template."""
from __future__ import annotations

from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _StrictSandbox(ImmutableSandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe")


def sandboxed_environment() -> ImmutableSandboxedEnvironment:
    environment = _StrictSandbox(autoescape=False, undefined=Undefined, keep_trailing_newline=False)
    environment.globals.clear()
    return environment
