-- A mailing attempt holds its invitation until claimed_until, so that two deliveries of one
-- invitation.issued (a republished outbox row) never email it at the same time, while a
-- crashed attempt's claim still runs out.
ALTER TABLE invitations ADD COLUMN claimed_until timestamptz;
