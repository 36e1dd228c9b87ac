"""What userprov's SCIM service declares: the core User schema and the enterprise extension
(RFC 7643 §4.1, §4.3), and its capabilities (/ServiceProviderConfig). The attributes userprov
keeps are declared as it keeps them; every other attribute of the two schemas is declared
writeOnly and never returned, described as accepted and not kept, so that identity providers'
default bodies are taken and /Schemas says what becomes of each attribute. An attribute of
neither schema, or of another schema, is unknown: a 400."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import scim2_models
from pydantic import BeforeValidator, Field, create_model
from scim2_models import (
    URN,
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Returned,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import External as ExternalReference

from contracts.base import LANGUAGES
from contracts.queries import USERS_LIST_MAX
from userprov.scim.idp_values import manager_of_string, scim_boolean

NOT_KEPT = "Accepted and not kept by userprov: never returned."
LANGUAGE = (f"The person's language: the first that userprov supports ({', '.join(LANGUAGES)}) named by preferredLanguage"
            " (an Accept-Language list: `da, fr;q=0.8` is `fr`), else by locale; a region is ignored (`fr-CA` and `fr_CA`"
            " are `fr`). When neither names one: the account's SCIM default on creation, no change after. Never returned.")


def _ignored(description: str = NOT_KEPT) -> Any:
    return Field(default=None, description=description)


def _not_kept(model: type[ComplexAttribute], mutability: Mutability = Mutability.write_only) -> Any:
    """A complex attribute of the core schema whose sub-attributes userprov accepts and does
    not keep: each is declared so in /Schemas, as the attribute itself is."""
    fields: dict[str, Any] = {
        name: (Annotated[field.annotation, mutability, Returned.never],
               Field(default=None, description=NOT_KEPT, validation_alias=field.validation_alias,
                     serialization_alias=field.serialization_alias))
        for name, field in model.model_fields.items()
    }
    return create_model(model.__name__, __base__=model, **fields)


if TYPE_CHECKING:  # to a type checker, the core classes: these subclasses change only the declared characteristics
    from scim2_models import Address, Entitlement, GroupMembership, Im, PhoneNumber, Photo, Role, X509Certificate
else:
    PhoneNumber = _not_kept(scim2_models.PhoneNumber)
    Im = _not_kept(scim2_models.Im)
    Photo = _not_kept(scim2_models.Photo)
    Address = _not_kept(scim2_models.Address)
    GroupMembership = _not_kept(scim2_models.GroupMembership, Mutability.read_only)
    Entitlement = _not_kept(scim2_models.Entitlement)
    Role = _not_kept(scim2_models.Role)
    X509Certificate = _not_kept(scim2_models.X509Certificate)


class Name(ComplexAttribute):
    formatted: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    family_name: Annotated[str | None, Required.true] = Field(default=None, description="The last name: 1 to 32 characters.")
    given_name: Annotated[str | None, Required.true] = Field(default=None, description="The first name: 1 to 32 characters.")
    middle_name: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    honorific_prefix: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    honorific_suffix: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()


class Email(ComplexAttribute):
    """The one address of a person: their userName, given back as their work email."""

    value: Annotated[str | None, Mutability.read_only] = Field(default=None, description="The userName.")
    display: Annotated[str | None, Mutability.read_only, Returned.never] = _ignored("Ignored: never returned.")
    type: Annotated[str | None, Mutability.read_only] = Field(default=None, description="Always `work`.")
    primary: Annotated[bool | None, Mutability.read_only] = Field(default=None, description="Always true.")


class User(Resource[AnyExtension]):
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true, Mutability.immutable, CaseExact.false] = Field(
        default=None, description="The person's email address, which userprov knows them by: it cannot change.")
    name: Annotated[Name | None, Required.true] = Field(
        default=None, description="The person's names: givenName and familyName are kept, the other parts accepted and not kept.")
    display_name: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    nick_name: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    profile_url: Annotated[Reference[ExternalReference] | None, Mutability.write_only, Returned.never] = _ignored()
    title: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    user_type: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    preferred_language: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored(LANGUAGE)
    locale: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored(LANGUAGE)
    timezone: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    active: Annotated[bool | None, BeforeValidator(scim_boolean)] = Field(
        default=None, description="false: deactivated (no seat, open invitations revoked; created so: never invited); true or"
        " left out on creation: active, invited. Back to true: invited anew unless they had accepted. The strings"
        " \"True\" and \"False\" (any case, as Entra sends them) are taken too; any other value is a 400.")
    password: Annotated[str | None, Mutability.write_only, Returned.never, CaseExact.true] = _ignored(
        "Accepted and not kept by userprov: people create their password from the invitation. Never returned.")
    emails: Annotated[list[Email] | None, Mutability.read_only, Returned.default] = Field(
        default=None, description="The person's one address, their userName, as their work email: what a POST or PUT sends"
        " is ignored, and a PATCH of it refused (400 mutability).")
    phone_numbers: Annotated[list[PhoneNumber] | None, Mutability.write_only, Returned.never] = _ignored()
    ims: Annotated[list[Im] | None, Mutability.write_only, Returned.never] = _ignored()
    photos: Annotated[list[Photo] | None, Mutability.write_only, Returned.never] = _ignored()
    addresses: Annotated[list[Address] | None, Mutability.write_only, Returned.never] = _ignored()
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only, Returned.never] = _ignored(
        "userprov keeps no groups: ignored, never returned.")
    entitlements: Annotated[list[Entitlement] | None, Mutability.write_only, Returned.never] = _ignored()
    roles: Annotated[list[Role] | None, Mutability.write_only, Returned.never] = _ignored()
    x509_certificates: Annotated[list[X509Certificate] | None, Mutability.write_only, Returned.never] = _ignored()


class Manager(ComplexAttribute):
    value: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    ref: Annotated[Reference[User] | None, Mutability.write_only, Returned.never] = Field(
        default=None, serialization_alias="$ref", validation_alias="$ref", description=NOT_KEPT)
    display_name: Annotated[str | None, Mutability.read_only, Returned.never] = _ignored()


class EnterpriseUser(Extension):
    __schema__ = URN("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")

    employee_number: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    cost_center: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    organization: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    division: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    department: Annotated[str | None, Mutability.write_only, Returned.never] = _ignored()
    manager: Annotated[Manager | None, BeforeValidator(manager_of_string), Mutability.write_only, Returned.never] = _ignored(
        "Accepted and not kept by userprov: never returned. A plain string (as Entra sends it) is taken as its value.")


ScimUser = User[EnterpriseUser]  # what /Users serves: the enterprise extension is optional in each request

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="Bearer token",
    description="A token made by `userprov scim token create ACCOUNT`, sent as `Authorization: Bearer <token>`.",
    spec_uri=Reference[ExternalReference]("https://www.rfc-editor.org/rfc/rfc6750"),
    primary=True,
)

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=USERS_LIST_MAX),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[BEARER],
)


def provider() -> ScimProvider:
    return ScimProvider(models=[User, EnterpriseUser], resource_types=[ResourceType.from_resource(ScimUser)], config=CONFIG)
