-- Bearer tokens of identity providers' SCIM clients, one account each: only their SHA-256 hash
-- is kept. A revoked token stays, so that its id still names it.
CREATE TABLE scim_tokens (
    token_id    uuid PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX scim_tokens_by_account ON scim_tokens (account_id);
