-- The last failure of each message a handler failed on and that went back to its queue, so
-- that when the message is parked (at the delivery limit) the parked copy can say why: the
-- exception, how often, since when. Pruned with the inbox.
CREATE TABLE delivery_failures (
    service        text NOT NULL,
    message_id     text NOT NULL,
    first_failure  timestamptz NOT NULL DEFAULT now(),
    last_failure   timestamptz NOT NULL DEFAULT now(),
    failures       integer NOT NULL DEFAULT 1,
    error_type     text NOT NULL,
    error_message  text NOT NULL,
    PRIMARY KEY (service, message_id)
);
CREATE INDEX delivery_failures_by_age ON delivery_failures (last_failure);
