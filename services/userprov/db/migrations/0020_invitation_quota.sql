-- accounts.upsert's invitation_quota_per_day: at most this many invitations in any rolling 24
-- hours (NULL: no quota). What is used is counted from the invitations of the account created in
-- the last 24 hours (and the members still waiting for their decision), by this index.
ALTER TABLE accounts ADD COLUMN invitation_quota_per_day integer CHECK (invitation_quota_per_day >= 0);
CREATE INDEX invitations_by_account_created ON invitations (account_id, created_at);
