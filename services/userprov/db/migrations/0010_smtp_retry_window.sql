-- A temporary SMTP failure (4xx, a timeout) is retried for a window from the first try that
-- reached the server (USERPROV_SMTP_RETRY_SECONDS), as a mail relay keeps a message queued:
-- hours or days, not seconds. `attempts` still counts tries (for the backoff); a claim that
-- lapsed because its worker died counts in `lapses`, which bounds a poison email apart.
ALTER TABLE invitations
    ADD COLUMN first_tried_at timestamptz,
    ADD COLUMN lapses integer NOT NULL DEFAULT 0,
    ADD COLUMN failed_at timestamptz;
UPDATE invitations SET failed_at = COALESCE(responded_at, created_at) WHERE status = 'failed';
-- operators list (and retry) the failed invitations of an account, or of all, oldest first
CREATE INDEX invitations_failed ON invitations (failed_at, invitation_id) WHERE status = 'failed';
CREATE INDEX invitations_failed_by_account ON invitations (account_id, failed_at, invitation_id) WHERE status = 'failed';
