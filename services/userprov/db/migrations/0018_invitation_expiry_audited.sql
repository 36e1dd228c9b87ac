-- userprov changes nothing when an invitation expires (its link is refused from then on): the
-- housekeeping sweep records its audit entry `invitation.expired` afterwards, once, and marks it here.
ALTER TABLE invitations ADD COLUMN expiry_audited_at timestamptz;
CREATE INDEX invitations_expired_unaudited ON invitations (expires_at) WHERE status = 'sent' AND expiry_audited_at IS NULL;
