-- The emails that reached each member, latest last: an invitation decided for a member whose last
-- email reached them less than USERPROV_RESEND_COOLDOWN_SECONDS ago waits for the cooldown
-- (reactivation cannot flood a person's inbox); for a new member the probe finds nothing.
CREATE INDEX invitations_delivered ON invitations (membership_id, sent_at) WHERE sent_at IS NOT NULL;
