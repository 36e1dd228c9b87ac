-- What people added through SCIM get in an account (accounts.upsert's `scim` section, as JSON):
-- products, role, language, group, settings template. NULL: none set.
ALTER TABLE accounts ADD COLUMN scim_defaults jsonb;
