"""SCIM errors' details in plain words, naming SCIM attributes: scim2-models words some from
pydantic's text (`1 validation error for Name ... https://errors.pydantic.dev/...`) and Python
field names (`'phone_numbers'`), and leaves a mutability error without its attribute."""
from __future__ import annotations

import re

from pydantic import ValidationError
from scim2_models import Error, MutabilityException, SCIMException

_PYTHON_NAME = re.compile(r"'([a-z][a-z0-9]*(?:_[a-z0-9]+)+)'")


def plain(exception: SCIMException) -> SCIMException:
    """The exception, its detail rewritten when it is pydantic's or names a Python field."""
    detail, cause = exception.detail, exception.__cause__
    if isinstance(cause, ValidationError) and ("validation error" in detail or "pydantic" in detail):
        detail = "; ".join(f"{_scim_path(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in cause.errors())
    elif isinstance(exception, MutabilityException) and exception.attribute and detail == exception._default_detail:
        detail = f"'{scim_name(exception.attribute)}' is {exception.mutability or 'not modifiable'}: it cannot change."
    detail = _PYTHON_NAME.sub(lambda m: f"'{scim_name(m.group(1))}'", detail)
    if detail == exception.detail:
        return exception
    return SCIMException.from_error(Error(status=exception.status, scim_type=exception.scim_type or None, detail=detail))


def scim_name(python_name: str) -> str:
    """`phone_numbers` as SCIM spells it, `phoneNumbers`."""
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _scim_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(scim_name(part) if isinstance(part, str) else f"[{part}]" for part in loc)
