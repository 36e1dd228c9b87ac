"""Values identity providers send in forms of their own, read as SCIM's: Entra's booleans as
the strings "True" and "False" (any case), and its enterprise manager as a plain string (the
manager's id, as `{"value": ...}`). Any other value is refused, naming its attribute: pydantic's
lax booleans (`"yes"`, `1`, `"on"`) are not SCIM's."""
from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

BOOLEANS = {"true": True, "false": False}


def scim_boolean(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in BOOLEANS:
        return BOOLEANS[value.strip().casefold()]
    raise PydanticCustomError("not_a_boolean", "Input should be true or false")


def manager_of_string(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value
