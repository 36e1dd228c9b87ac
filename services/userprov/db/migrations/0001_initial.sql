-- userprov schema, version 1.

CREATE TABLE accounts (
    account_id          text PRIMARY KEY,
    name                text NOT NULL,
    status              text NOT NULL CHECK (status IN ('active', 'expired')),
    groups              text[] NOT NULL DEFAULT '{}',
    settings_templates  text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- seats_used is kept beside the assignments so that the CHECK below makes overselling
-- impossible whatever the code does; every change to seat_assignments updates it in the
-- same statement batch.
CREATE TABLE account_licences (
    account_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    product      text NOT NULL,
    seats_total  integer NOT NULL CHECK (seats_total >= 0),
    seats_used   integer NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
    PRIMARY KEY (account_id, product),
    CONSTRAINT seats_not_oversold CHECK (seats_used <= seats_total)
);

CREATE TABLE welcome_templates (
    account_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    language    text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    PRIMARY KEY (account_id, language)
);

-- One platform profile per person (email), whatever accounts they belong to.
CREATE TABLE profiles (
    profile_id  uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE CHECK (email = lower(email)),
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    membership_id      uuid PRIMARY KEY,
    account_id         text NOT NULL REFERENCES accounts,
    profile_id         uuid NOT NULL REFERENCES profiles,
    first_name         text NOT NULL,
    last_name          text NOT NULL,
    role               text CHECK (role IN ('admin', 'manager')),
    language           text NOT NULL,
    user_group         text,
    settings_template  text,
    status             text NOT NULL CHECK (status IN
                           ('pending', 'invited', 'transfer_pending', 'active', 'suspended', 'removed')),
    added_by_command   text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    status_changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX memberships_one_current_per_account
    ON memberships (account_id, profile_id) WHERE status <> 'removed';
CREATE INDEX memberships_by_profile ON memberships (profile_id) WHERE status <> 'removed';

CREATE TABLE seat_assignments (
    membership_id  uuid NOT NULL REFERENCES memberships ON DELETE CASCADE,
    account_id     text NOT NULL,
    product        text NOT NULL,
    PRIMARY KEY (membership_id, product),
    FOREIGN KEY (account_id, product) REFERENCES account_licences (account_id, product)
);
CREATE INDEX seat_assignments_by_licence ON seat_assignments (account_id, product);

CREATE TABLE invitations (
    invitation_id    uuid PRIMARY KEY,
    membership_id    uuid NOT NULL REFERENCES memberships,
    kind             text NOT NULL CHECK (kind IN ('welcome', 'transfer')),
    status           text NOT NULL CHECK (status IN
                         ('issued', 'sending', 'sent', 'accepted', 'declined', 'revoked', 'failed')),
    token_hash       bytea UNIQUE,
    expires_at       timestamptz,
    sent_count       integer NOT NULL DEFAULT 0,
    from_account_id  text REFERENCES accounts,
    failure_reason   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    responded_at     timestamptz
);
CREATE UNIQUE INDEX invitations_one_open_per_membership
    ON invitations (membership_id) WHERE status IN ('issued', 'sending', 'sent');

CREATE TABLE assets (
    account_id   text NOT NULL REFERENCES accounts,
    kind         text NOT NULL CHECK (kind IN ('session_history', 'scheduled_session', 'upcoming_recording')),
    ref          text NOT NULL,
    profile_id   uuid NOT NULL REFERENCES profiles,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, kind, ref)
);
CREATE INDEX assets_by_owner ON assets (profile_id, account_id);

-- Idempotency: one row per (service, message_id) handled, written in the handler's transaction.
CREATE TABLE inbox (
    service       text NOT NULL,
    message_id    text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, message_id)
);

-- Transactional outbox: events written with the state change, relayed to RabbitMQ after commit.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    exchange        text NOT NULL,
    routing_key     text NOT NULL,
    message_id      text NOT NULL,
    correlation_id  text,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
