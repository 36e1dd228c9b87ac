-- The AMQP `type` of an outgoing message: its message name. Events are named by their routing
-- key; a reply goes to the caller's queue, so its routing key is that queue's name and its type
-- says what it is (`users.get.reply`, or `command.rejected` for a refused query).
ALTER TABLE outbox ADD COLUMN message_type text;
