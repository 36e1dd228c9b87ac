-- The audit trail: one entry per change of an account's memberships, invitations, settings or SCIM
-- tokens, written in the transaction of the change. Per account, `seq` counts 1, 2, 3, ... without
-- gaps, and `hash` chains the entries: SHA-256 of the entry's canonical form and of the previous
-- entry's hash (userprov.audit), so that a changed, deleted or reordered entry is found.
CREATE TABLE audit_entries (
    account_id      text NOT NULL,
    seq             bigint NOT NULL CHECK (seq > 0),
    at              timestamptz NOT NULL,
    action          text NOT NULL,
    actor_kind      text NOT NULL CHECK (actor_kind IN ('user', 'service', 'scim_token', 'invitee', 'operator', 'system')),
    actor_id        text,
    target_user_id  uuid,
    target_email    text,
    changes         jsonb NOT NULL DEFAULT '{}'::jsonb,
    via             text NOT NULL CHECK (via IN ('bus', 'scim', 'links', 'cli', 'system')),
    message_id      text,
    correlation_id  text,
    hash            bytea NOT NULL,
    PRIMARY KEY (account_id, seq)
);
-- audit.list's filters, newest first
CREATE INDEX audit_entries_by_user ON audit_entries (account_id, target_user_id, seq);
CREATE INDEX audit_entries_by_email ON audit_entries (account_id, target_email, seq);
CREATE INDEX audit_entries_by_time ON audit_entries (account_id, at);
