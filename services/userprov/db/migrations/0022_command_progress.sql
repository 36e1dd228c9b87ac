-- How far a users.add has come (commands.get's `progress`, the users.add.progress event) is
-- counted from the members it created and their invitations, when asked: no counter is
-- written on the hot path. These indexes find a command's members and each member's invitations.
CREATE INDEX memberships_by_command ON memberships (added_by_command) WHERE added_by_command IS NOT NULL;
CREATE INDEX invitations_by_membership ON invitations (membership_id);

-- A large users.add (more than the express lane's 10 rows) whose progress is published: its
-- row counts, fixed when it was handled, and when its last users.add.progress was published.
-- Updated with a condition (published_at a second old or more), so that however many mailing
-- processes record its emails, at most one event a second is published; `done` once the last.
CREATE TABLE command_progress (
    command_id    text PRIMARY KEY,
    account_id    text NOT NULL,
    correlation_id text,  -- the command's, copied onto its events
    rows          integer NOT NULL,
    created       integer NOT NULL,
    refused       integer NOT NULL,
    published_at  timestamptz,
    done          boolean NOT NULL DEFAULT false,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_progress_by_age ON command_progress (recorded_at);
