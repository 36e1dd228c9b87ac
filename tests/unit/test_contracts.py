from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from contracts import examples, registry, routing, schema_export
from contracts.base import RowErrorCode
from contracts.commands import UsersAdd
from contracts.events import InvitationIssued, RejectionReason, ResponseRefusal
from contracts.registry import COMMAND_MODELS, EVENT_MODELS, INTERNAL_EVENTS, REPLY_MODELS, reply_type
from contracts.schema_export import rendered_files
from userprov.app import SERVICES
from userprov.settings import Settings
from userprov_devtools import reference_docs


class TestContracts:
    """The models are strict and frozen, the generated schemas are current, and routes match bindings."""

    def test_generated_files_are_current(self) -> None:
        stale = [str(p) for p, text in rendered_files().items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        assert not stale, f"run `python -m contracts.schema_export`: stale {stale}"

    def test_the_messages_reference_shows_every_message(self) -> None:
        shown = [name for _, _, names in reference_docs.message_groups() for name in names]
        every = {*COMMAND_MODELS, *(reply_type(k) for k in REPLY_MODELS), *EVENT_MODELS}
        assert sorted(shown) == sorted(every)
        assert set(shown[-len(INTERNAL_EVENTS):]) == INTERNAL_EVENTS  # userprov's own hand-offs last, apart

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            UsersAdd(account_id="a", surprise=1)

    def test_frozen(self) -> None:
        command = UsersAdd(account_id="a")
        with pytest.raises(ValidationError):
            command.account_id = "b"  # type: ignore[misc]

    def test_every_bound_routing_key_has_a_handler_and_back(self) -> None:
        settings = Settings()
        for service in routing.SERVICES:
            assert {key for _, key in registry.subscriptions(service)} == set(SERVICES[service](settings).handlers), service

    def test_the_fuzzer_knows_every_routing_key_the_workers_consume(self) -> None:
        from tests.support.fuzz import VALID_BODIES

        consumed = {key for service in routing.SERVICES for _, key in registry.subscriptions(service)}
        assert consumed <= set(VALID_BODIES), sorted(consumed - set(VALID_BODIES))
        for key, body in VALID_BODIES.items():
            registry.model_of(key).model_validate(body)  # type: ignore[union-attr]  # a valid start for its mutations

    def test_every_routing_key_has_a_model_on_its_exchange(self) -> None:
        for service in routing.SERVICES:
            for exchange, key in registry.subscriptions(service):
                assert registry.model_of(key) is not None
                assert exchange in (registry.exchange_of(key), registry.DEPRECATED_EXCHANGE.get(key))
        # accepts and declines (tokens) come on their own exchange, and on the old path for one version
        assert set(registry.subscriptions(routing.INVITATION_RESPONSE)) == {
            (routing.RESPONSES_EXCHANGE, routing.INVITATION_ACCEPTED), (routing.RESPONSES_EXCHANGE, routing.INVITATION_DECLINED),
            (routing.EVENTS_EXCHANGE, routing.INVITATION_ACCEPTED), (routing.EVENTS_EXCHANGE, routing.INVITATION_DECLINED)}

    @pytest.mark.parametrize("bad", ["pro\x00duct", "pro\ud800duct"])
    def test_unstorable_text_is_refused_anywhere_but_in_rows(self, bad: str) -> None:
        from contracts.commands import AccountsUpsert

        with pytest.raises(ValidationError) as caught:
            AccountsUpsert(account_id="a", name="x", licences={bad: 1})
        assert caught.value.errors()[0]["loc"][0] == "licences"
        with pytest.raises(ValidationError):
            AccountsUpsert(account_id="a", name=bad)
        # a person's fields are judged row by row: one bad row must not refuse the command
        UsersAdd(account_id="a", users=[{"first_name": bad, "last_name": "B", "email": bad}], pasted=bad)

    def test_emails_in_commands_arrive_normalised(self) -> None:
        from contracts.commands import UsersRemove

        command = UsersRemove(account_id="a", email=" Ana@XN--BCHER-KVA.example.com ", requested_by="Boss@Example.com")
        assert (command.email, command.requested_by) == ("ana@bücher.example.com", "boss@example.com")
        with pytest.raises(ValidationError):
            UsersRemove(account_id="a", email="not an address")


class TestExamples:
    """Every message has one example in the AsyncAPI document, and it is valid."""

    def test_one_per_message(self) -> None:
        assert set(examples.PAYLOADS) == set(schema_export._messages())

    @pytest.mark.parametrize("name", sorted(examples.PAYLOADS))
    def test_valid(self, name: str) -> None:
        schema_export._messages()[name].model_validate(examples.PAYLOADS[name])
        assert examples.properties(name)["type"] == name


class TestErrorCodesDocumented:
    """Every closed set on the wire is explained in the documentation's error codes, code by code."""

    ERRORS = (Path(__file__).parents[2] / "docs" / "reference" / "errors.md").read_text(encoding="utf-8")

    @pytest.mark.parametrize("code", sorted(
        set(get_args(RejectionReason)) | set(get_args(RowErrorCode)) | set(get_args(ResponseRefusal))))
    def test_each_code_has_a_row(self, code: str) -> None:
        in_a_table = re.search(rf"^\| [^|]*`{code}`", self.ERRORS, re.MULTILINE)
        in_a_list = re.search(rf"`{code}`[ ,(]", self.ERRORS)
        assert in_a_table or in_a_list, f"docs/reference/errors.md does not explain `{code}`"


class TestInvitationIssued:
    def test_a_chunk(self) -> None:
        ids = [str(uuid.UUID(int=n)) for n in range(3)]
        event = InvitationIssued.model_validate({"invitations": [{"invitation_id": i, "kind": "welcome"} for i in ids]})
        assert [str(i.invitation_id) for i in event.invitations] == ids

    def test_the_one_invitation_form_of_earlier_versions_is_read(self) -> None:
        event = InvitationIssued.model_validate({"invitation_id": str(uuid.UUID(int=7)), "kind": "transfer"})
        assert [(i.invitation_id.int, i.kind) for i in event.invitations] == [(7, "transfer")]

    @pytest.mark.parametrize("body", [{"invitations": []}, {}, {"invitation_id": "x", "kind": "welcome"},
                                      {"invitations": [{"invitation_id": str(uuid.UUID(int=1)), "kind": "other"}]}])
    def test_refused(self, body: dict) -> None:
        with pytest.raises(ValidationError):
            InvitationIssued.model_validate(body)


class TestTransientFaults:
    """Which faults are retried in process: connection loss, also when it surfaces during a rollback."""

    def test_classification(self) -> None:
        import asyncpg

        from userprov.runtime.errors import Rejected, is_transient

        assert is_transient(asyncpg.ConnectionDoesNotExistError("gone"))
        assert is_transient(asyncpg.SerializationError("retry"))
        assert is_transient(asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"))  # fenced
        assert not is_transient(RuntimeError("bug"))
        assert not is_transient(Rejected("forbidden", "no"))
        try:
            try:
                raise asyncpg.ConnectionDoesNotExistError("gone")
            except Exception:
                # the implicit __context__ is what is under test
                raise asyncpg.InterfaceError("the underlying connection is closed")  # noqa: B904
        except asyncpg.InterfaceError as error:
            assert is_transient(error)
