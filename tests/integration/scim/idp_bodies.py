"""Okta's and Microsoft Entra ID's request bodies as their documentation shows them (the
addresses made example.com ones)."""
from __future__ import annotations

from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def okta_create(email: str) -> dict[str, Any]:
    """Okta's create, from "Okta and SCIM Version 2.0", Create the User:
    https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20"""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {
            "givenName": "Test",
            "familyName": "User"
        },
        "emails": [{
            "primary": True,
            "value": email,
            "type": "work"
        }],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True
    }


def okta_put(user_id: str, email: str) -> dict[str, Any]:
    """Okta's update, from the same page, Update a specific User (PUT)."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": user_id,
        "userName": email,
        "name": {
            "givenName": "Another",
            "middleName": "Excited",
            "familyName": "User"
        },
        "emails": [{
            "primary": True,
            "value": email,
            "type": "work",
            "display": email
        }],
        "active": True,
        "groups": [],
        "meta": {
            "resourceType": "User"
        }
    }


def entra_create(email: str) -> dict[str, Any]:
    """Entra's create, from "Tutorial: Develop and plan provisioning for a SCIM endpoint in
    Microsoft Entra ID", User Operations, Create User (its userName, a UPN, made an address):
    https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups"""
    return {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": email,
        "active": True,
        "emails": [{
            "primary": True,
            "type": "work",
            "value": email
        }],
        "meta": {
            "resourceType": "User"
        },
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName"
        },
        "roles": []
    }


def entra_mapped_create(email: str) -> dict[str, Any]:
    """Entra's create with every attribute of the same tutorial's table of user attributes
    mapped (displayName, title from jobTitle, preferredLanguage, the phone numbers, the work
    address, the enterprise extension's department, employeeNumber and manager), as its
    provisioning service builds it."""
    return {
        **entra_create(email),
        "displayName": "Grace Hopper",
        "title": "Rear Admiral",
        "preferredLanguage": "fr-FR",
        "phoneNumbers": [{"type": "work", "value": "+1 425 555 0100"}, {"type": "mobile", "value": "+1 425 555 0101"},
                         {"type": "fax", "value": "+1 425 555 0102"}],
        "addresses": [{"type": "work", "streetAddress": "1 Microsoft Way", "postalCode": "98052", "primary": True}],
        ENTERPRISE: {"department": "Navy", "employeeNumber": "1906", "manager": {"value": "d3c05b2a-6f5e-4e7a-9b1c-2a0e5f4d3c2b"}},
    }


# Entra's PATCH of several attributes, from "Known issues and resolutions with SCIM 2.0 protocol
# compliance of the Microsoft Entra user provisioning service", Requests to replace multiple
# attributes, without and with the compliance flag:
# https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
# Their operation on emails[type eq "work"].value is left out: userprov refuses a change of the
# address (README: remove that mapping).
ENTRA_PATCH = {
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "Replace",
            "path": "displayName",
            "value": "Pvlo"
        },
        {
            "op": "Replace",
            "path": "name.givenName",
            "value": "Gtfd"
        },
        {
            "op": "Replace",
            "path": "name.familyName",
            "value": "Pkqf"
        },
        {
            "op": "Replace",
            "path": "externalId",
            "value": "Eqpj"
        },
        {
            "op": "Replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "value": "Eqpj"
        }
    ]
}
ENTRA_PATCH_COMPLIANT = {
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }
        }
    ]
}
