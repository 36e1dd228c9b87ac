-- What became of each command, by its message_id: the public events its handling committed
-- (or its refusal), written in the same transaction, for `commands.get`. Kept as long as the
-- inbox remembers the message.
CREATE TABLE command_outcomes (
    command_id    text PRIMARY KEY,
    command_type  text NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('done', 'rejected')),
    events        jsonb NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_outcomes_by_age ON command_outcomes (recorded_at);
