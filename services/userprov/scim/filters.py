"""A SCIM filter (already parsed and checked against the User model by scim2-models) as the
fields of a `users.list` query: what identity providers filter on, `eq` joined by `and`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path import AttrPath, CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator, ValuePath

SUPPORTED = ("userName eq, emails.value eq (or emails[value eq ...]), externalId eq, id eq and active eq, joined by and;"
             " nothing else")

# attribute (lower-case, as SCIM attribute names are case-insensitive) -> users.list field
_FIELDS = {("username", None): "email", ("emails", "value"): "email", ("externalid", None): "external_id", ("id", None): "user_id",
           ("active", None): "active"}


class NoMatch(Exception):
    """The filter asks for two different values of one field: no one matches."""


@dataclass(frozen=True)
class Wanted:
    email: str | None = None
    external_id: str | None = None
    user_id: str | None = None
    active: bool | None = None


def wanted(node: FilterNode | None) -> Wanted:
    """The fields a filter asks for; raises NoMatch, or InvalidFilterException for a filter
    outside `SUPPORTED`."""
    found: dict[str, Any] = {}
    for field, value in _terms(node):
        if field in found and _differ(field, found[field], value):
            raise NoMatch
        found[field] = value
    return Wanted(**found)


def _terms(node: FilterNode | None) -> list[tuple[str, Any]]:
    if node is None:
        return []
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        return [term for child in node.terms for term in _terms(child)]
    if isinstance(node, Comparison) and node.op == CompareOperator.eq:
        return [_term(node.attr_path, node.value)]
    if (isinstance(node, ValuePath) and node.sub_attr is None and isinstance(node.val_filter, Comparison)
            and node.val_filter.op == CompareOperator.eq and node.val_filter.attr_path.sub_attr is None):
        return [_term(AttrPath(node.attr_path.attr, node.val_filter.attr_path.attr, node.attr_path.uri), node.val_filter.value)]
    raise InvalidFilterException(detail=f"Filters supported: {SUPPORTED}.")


def _term(path: AttrPath, value: Any) -> tuple[str, Any]:
    if path.uri is not None and path.uri.lower() != "urn:ietf:params:scim:schemas:core:2.0:user":
        raise InvalidFilterException(detail=f"Filters supported: {SUPPORTED}.")
    field = _FIELDS.get((path.attr.lower(), path.sub_attr.lower() if path.sub_attr else None))
    if field is None:
        raise InvalidFilterException(detail=f"Filters supported: {SUPPORTED}.")
    expected = bool if field == "active" else str
    if not isinstance(value, expected):
        raise InvalidFilterException(detail=f"{path} is compared with a {expected.__name__}.")
    return field, value


def _differ(field: str, a: Any, b: Any) -> bool:
    if field == "email":  # case-insensitive, as userName is
        return bool(a.casefold() != b.casefold())
    return bool(a != b)
