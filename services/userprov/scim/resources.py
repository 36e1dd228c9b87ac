"""What userprov's SCIM service declares: a User of the core schema reduced to what userprov
keeps, and its capabilities (/ServiceProviderConfig). A client sees no attribute that userprov
would silently drop: any other is an unknown attribute."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    Returned,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import External as ExternalReference

from contracts.queries import USERS_LIST_MAX


class Name(ComplexAttribute):
    given_name: Annotated[str | None, Required.true] = Field(default=None, description="The first name: 1 to 32 characters.")
    family_name: Annotated[str | None, Required.true] = Field(default=None, description="The last name: 1 to 32 characters.")


class Email(ComplexAttribute):
    """The one address of a person: their userName, given back as their work email."""

    value: Annotated[str | None, Mutability.read_only] = None
    type: Annotated[str | None, Mutability.read_only] = None
    primary: Annotated[bool | None, Mutability.read_only] = None


class User(Resource[Any]):
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true, Mutability.immutable, CaseExact.false] = Field(
        default=None, description="The person's email address, which userprov knows them by: it cannot change.")
    name: Annotated[Name | None, Required.true] = None
    active: Annotated[bool | None, Required.true] = Field(
        default=None, description="false: deactivated (seats released, invitations revoked); true: back, invited anew unless"
        " they had accepted.")
    emails: Annotated[list[Email] | None, Mutability.read_only, Returned.default] = None


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
    return ScimProvider(models=[User], config=CONFIG)
