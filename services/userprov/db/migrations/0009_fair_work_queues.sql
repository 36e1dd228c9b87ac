-- The work of account lookup (memberships waiting for their decision) and of mailing
-- (invitations waiting for their email) is taken from these tables in a fair order across
-- accounts: start-time fair queueing. Each waiting row has a `turn`: an account's rows follow
-- one another (its tail + 1, + 2, ...), and an account with nothing waiting starts at the
-- queue's head. Taking rows by ascending turn then serves every waiting account once per turn,
-- so a large batch never holds back another account's work, and many small ones never starve it.
ALTER TABLE memberships
    ADD COLUMN turn bigint NOT NULL DEFAULT 0,
    -- where the work came from, copied onto the events it causes (correlation id, W3C trace context)
    ADD COLUMN correlation_id text,
    ADD COLUMN traceparent text,
    ADD COLUMN tracestate text;
CREATE INDEX memberships_waiting ON memberships (turn) WHERE status = 'pending';
CREATE INDEX memberships_waiting_by_account ON memberships (account_id, turn) WHERE status = 'pending';

ALTER TABLE invitations
    ADD COLUMN account_id text,
    ADD COLUMN turn bigint NOT NULL DEFAULT 0,
    -- SMTP tries of this invitation's email so far, and the earliest time of the next one
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN not_before timestamptz,
    ADD COLUMN correlation_id text,
    ADD COLUMN traceparent text,
    ADD COLUMN tracestate text;
UPDATE invitations i SET account_id = m.account_id FROM memberships m WHERE m.membership_id = i.membership_id;
ALTER TABLE invitations ALTER COLUMN account_id SET NOT NULL;
CREATE INDEX invitations_waiting ON invitations (turn) WHERE status = 'issued';
CREATE INDEX invitations_waiting_by_account ON invitations (account_id, turn) WHERE status = 'issued';
-- claims whose holder may have died: found when their lease runs out. The predicate names
-- claimed_until so that only a query about leases can use it: a scan of every 'sending' row
-- (and its dead entries) would otherwise look cheap to the planner for any query on that status.
CREATE INDEX invitations_claimed ON invitations (claimed_until) WHERE status = 'sending' AND claimed_until IS NOT NULL;

