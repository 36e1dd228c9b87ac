"""scim2-server's protocol as userprov answers it: a PATCH always returns the resource (Okta
expects it), a userName differing only in case is no change (it is caseExact false: RFC 7644
§3.5.1 refuses only an immutable value that does not match), and an operation on a value of an
attribute userprov does not keep, selected by a filter, is a no-op (nothing kept: no value to
match), and `active` is true or false only (or Entra's "True" and "False")."""
from __future__ import annotations

from typing import Any

from scim2_models import Context, InvalidValueException, PatchOp, Resource, ResponseParameters, Returned
from scim2_server.conditions import Conditions
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from userprov.scim.idp_values import scim_boolean

CORE = "urn:ietf:params:scim:schemas:core:2.0:user:"
USER_NAME_KEYS = ("username", f"{CORE}username")
ACTIVE_KEYS = ("active", f"{CORE}active")


class UserprovScimService(ScimService):
    def patch_response(self, base_url: str, resource: Resource[Any], response_parameters: ResponseParameters[Any]) -> ScimResponse:
        """The resource, always (RFC 7644 allows 204 too): Okta expects it."""
        return self.resource_response(self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters)

    def apply_replacement(self, current: Resource[Any], replacement: Resource[Any], conditions: Conditions) -> Resource[Any] | None:
        if _same_user_name(getattr(replacement, "user_name", None), current):
            replacement.user_name = current.user_name  # type: ignore[attr-defined]
        return super().apply_replacement(current, replacement, conditions)

    def apply_patch(self, current: Resource[Any], patch_op: PatchOp[Any], conditions: Conditions) -> Resource[Any] | None:
        kept = []
        for operation in patch_op.operations or []:
            if operation.path is not None and _filters_unkept(operation.path):
                continue
            if operation.path is not None and _is_field(operation.path, "active"):
                _check_boolean(operation.value)
            if operation.path is not None and _is_field(operation.path, "user_name") and _same_user_name(operation.value, current):
                operation.value = current.user_name  # type: ignore[attr-defined]
            elif operation.path is None and isinstance(operation.value, dict):
                for key, value in operation.value.items():
                    if key.casefold() in ACTIVE_KEYS:
                        _check_boolean(value)
                operation.value = {key: current.user_name  # type: ignore[attr-defined]
                                   if key.casefold() in USER_NAME_KEYS and _same_user_name(value, current) else value
                                   for key, value in operation.value.items()}
            kept.append(operation)
        if not kept:  # only no-ops
            self.check_preconditions(current, "PATCH", conditions)
            return None
        patch_op.operations = kept
        return super().apply_patch(current, patch_op, conditions)


def _same_user_name(value: Any, current: Resource[Any]) -> bool:
    stored = getattr(current, "user_name", None)
    return isinstance(value, str) and isinstance(stored, str) and value.casefold() == stored.casefold()


def _is_field(path: Any, field_name: str) -> bool:
    binding = path.resolve() if path.model is None else None
    return binding is not None and binding.field_name == field_name and binding.sub_field_name is None


def _check_boolean(value: Any) -> None:
    """scim2-models skips a value equal to the current one (1 == True) unvalidated: checked here."""
    try:
        scim_boolean(value)
    except ValueError:
        raise InvalidValueException(detail="active: Input should be true or false") from None


def _filters_unkept(path: Any) -> bool:
    """A path selecting values, by a filter, of an attribute userprov never keeps (nor returns)."""
    binding = path.resolve() if path.model is None else None
    return (binding is not None and path.value_filter is not None
            and binding.model.get_field_annotation(binding.field_name, Returned) == Returned.never)
