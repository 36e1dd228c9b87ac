-- What a transfer's accept moved ({"session_history": n, ...}), kept on its invitation, so that
-- the page behind the link shows the same result however often it is asked (invitations.peek).
ALTER TABLE invitations ADD COLUMN moved jsonb;
