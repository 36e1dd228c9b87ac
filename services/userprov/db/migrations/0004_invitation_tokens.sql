-- Every token minted for an invitation stays valid until the invitation is used, revoked or
-- expires: a mailing attempt that is repeated after a fault (the email may have left before
-- the fault) mints a new token, and the link in the first email must still work.
CREATE TABLE invitation_tokens (
    token_hash     bytea PRIMARY KEY,
    invitation_id  uuid NOT NULL REFERENCES invitations ON DELETE CASCADE,
    minted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invitation_tokens_by_invitation ON invitation_tokens (invitation_id);
INSERT INTO invitation_tokens (token_hash, invitation_id)
    SELECT token_hash, invitation_id FROM invitations WHERE token_hash IS NOT NULL;
