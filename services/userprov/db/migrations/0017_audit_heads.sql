-- Each account's audit chain: its head (the seq and hash of its latest entry), locked by the
-- statement that appends entries, so that concurrent writers of one account append one after
-- the other; and its checkpoint (the seq and hash of the last entry retention deleted), from
-- which `userprov audit verify` checks what is left. An account without a head has no entry yet
-- (a head is made when its first entry is written); one without a checkpoint has lost none:
-- its chain starts at seq 1 from 32 zero bytes.
CREATE TABLE audit_heads (
    account_id  text PRIMARY KEY,
    seq         bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    hash        bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
);
CREATE TABLE audit_checkpoints (
    account_id  text PRIMARY KEY,
    seq         bigint NOT NULL CHECK (seq > 0),
    hash        bytea NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_heads (account_id) SELECT account_id FROM accounts ON CONFLICT DO NOTHING;
