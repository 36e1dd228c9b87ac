"""What an account's SCIM defaults may name: its own user groups, settings templates and licensed
products, as any users.add must (every SCIM create is one, and would be refused otherwise).

An accounts.upsert that would leave its defaults naming one the account lacks is refused: defaults
it gives, whatever they name; defaults it keeps, what it removes. A name kept defaults lacked
before the upsert already (set before this rule existed) is left to the next upsert of `scim`:
this one does not make it worse, and refusing, say, a billing update for it would fix nothing."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from contracts.base import FieldError
from contracts.commands import ScimDefaults
from contracts.events import RejectionReason
from contracts.text import printable
from userprov.runtime.errors import Rejected


@dataclass(frozen=True)
class Names:
    """What an account has that SCIM defaults may name."""

    groups: frozenset[str]
    settings_templates: frozenset[str]
    products: frozenset[str]


def refusal(defaults: ScimDefaults, given: bool, before: Names, after: Names) -> Rejected | None:
    """The upsert's refusal for `defaults` (given by it, or kept) against the account's names
    before and after it, naming every field at fault; None when it may go. Its reason is the
    first's code."""

    def lacking(named: Iterable[str], had: frozenset[str], has: frozenset[str]) -> list[str]:
        return sorted({name for name in named if name not in has and (given or name in had)})

    def said(names: list[str]) -> str:
        return ", ".join(repr(printable(name, 64)) for name in names)

    def error(field: str, code: RejectionReason, lacks: str) -> tuple[RejectionReason, FieldError]:
        if given:
            return code, FieldError(field=field, code=code, message=f"The account {lacks}.")
        return code, FieldError(field=field, code=code, message=f"After this upsert the account {lacks}, which its SCIM"
                                " defaults name: keep it, or change `scim` in the same upsert.")

    errors = []
    if group := lacking([defaults.group] if defaults.group else [], before.groups, after.groups):
        errors.append(error("scim.group", "unknown_group", f"has no user group {said(group)}"))
    if template := lacking([defaults.settings_template] if defaults.settings_template else [], before.settings_templates,
                           after.settings_templates):
        errors.append(error("scim.settings_template", "unknown_settings_template", f"has no settings template {said(template)}"))
    if products := lacking(defaults.products, before.products, after.products):
        errors.append(error("scim.products", "unknown_product", f"holds no licences for {said(products)}"))
    if not errors:
        return None
    return Rejected(errors[0][0], "The SCIM defaults would name what the account does not have: every SCIM create would be"
                    " refused.", [field_error for _, field_error in errors])
