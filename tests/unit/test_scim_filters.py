"""SCIM filters as users.list fields: what identity providers send, and a clear refusal of the rest."""
from __future__ import annotations

import pytest
from pydantic import ValidationError
from scim2_models import InvalidFilterException, SearchRequest

from userprov.scim.filters import NoMatch, Wanted, wanted
from userprov.scim.resources import User


def parsed(filter_: str) -> Wanted:
    request = SearchRequest[User](filter=filter_)
    assert request.filter is not None
    return wanted(request.filter.ast)


@pytest.mark.parametrize(("filter_", "expected"), [
    ('userName eq "ada@example.com"', Wanted(email="ada@example.com")),
    ('USERNAME eq "ada@example.com"', Wanted(email="ada@example.com")),  # attribute names are case-insensitive
    ('emails.value eq "ada@example.com"', Wanted(email="ada@example.com")),
    ('emails[value eq "ada@example.com"]', Wanted(email="ada@example.com")),
    ('externalId eq "00u1"', Wanted(external_id="00u1")),
    ('id eq "2819c223-7f76-453a-919d-413861904646"', Wanted(user_id="2819c223-7f76-453a-919d-413861904646")),
    ('active eq false', Wanted(active=False)),
    ('userName eq "ada@example.com" and externalId eq "00u1"', Wanted(email="ada@example.com", external_id="00u1")),
    ('userName eq "Ada@Example.com" and emails.value eq "ada@example.com"', Wanted(email="ada@example.com")),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.com"', Wanted(email="ada@example.com")),
])
def test_what_identity_providers_send(filter_: str, expected: Wanted) -> None:
    assert parsed(filter_) == expected


def test_no_filter_is_everyone() -> None:
    assert wanted(None) == Wanted()


def test_two_values_of_one_field_match_no_one() -> None:
    with pytest.raises(NoMatch):
        parsed('userName eq "a@example.com" and emails.value eq "b@example.com"')
    with pytest.raises(NoMatch):
        parsed('externalId eq "A" and externalId eq "a"')  # externalId is compared exactly


@pytest.mark.parametrize("filter_", [
    'userName sw "ada"', 'userName co "@"', 'userName pr', 'userName eq "a@example.com" or externalId eq "1"',
    'not (userName eq "a@example.com")', 'active eq "yes"', 'meta.created gt "2026-01-01T00:00:00Z"',
    'emails[type eq "work"]', 'name.givenName eq "Ada"',
])
def test_anything_else_is_refused_with_what_is_supported(filter_: str) -> None:
    with pytest.raises((InvalidFilterException, ValidationError)) as refused:
        parsed(filter_)
    if isinstance(refused.value, InvalidFilterException):
        assert "Filters supported" in refused.value.detail or "compared with" in refused.value.detail
