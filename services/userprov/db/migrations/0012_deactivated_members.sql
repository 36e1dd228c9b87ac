-- For identity providers (SCIM). A member an identity provider deactivated (SCIM `active: false`): they keep their membership
-- but not its use. Their seats are released; what they held, and the status they left, are
-- kept to bring them back (users.reactivate).
ALTER TABLE memberships DROP CONSTRAINT memberships_status_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_status_check CHECK (status IN
    ('pending', 'invited', 'transfer_pending', 'active', 'suspended', 'removed', 'deactivated')) NOT VALID;
ALTER TABLE memberships VALIDATE CONSTRAINT memberships_status_check;
ALTER TABLE memberships
    ADD COLUMN deactivated_from text,
    ADD COLUMN deactivated_products text[],
    -- the person's id in the adding system (a SCIM externalId), as given
    ADD COLUMN external_id text;
CREATE INDEX memberships_by_external_id ON memberships (account_id, external_id) WHERE status <> 'removed' AND external_id IS NOT NULL;
-- an account's members a page at a time, oldest first (users.list)
CREATE INDEX memberships_listed ON memberships (account_id, created_at, membership_id) WHERE status <> 'removed';
