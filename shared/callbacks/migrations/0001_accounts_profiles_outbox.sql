-- Accounts, their API keys (hashes only), callback profiles and the profile outbox.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,      -- sha256 of the key; the key itself is never stored
    prefix      text NOT NULL,              -- first characters, to tell keys apart in a listing
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The filterable columns are kept beside the whole document; secrets inside
-- `document` are sealed under the master key.
CREATE TABLE callback_profiles (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title       text NOT NULL,
    channel     text NOT NULL,
    method      text NOT NULL,
    enabled     boolean NOT NULL,
    document    jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX callback_profiles_account_created
    ON callback_profiles (account_id, created_at DESC, id DESC);

-- One row per change, written in the transaction of the change; the relay publishes
-- rows in id order to callbacks.profiles and stamps published_at.
CREATE TABLE profile_outbox (
    id            bigserial PRIMARY KEY,
    profile_id    uuid NOT NULL,
    payload       jsonb,                    -- NULL: the profile was deleted (tombstone)
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

CREATE INDEX profile_outbox_pending ON profile_outbox (id) WHERE published_at IS NULL;
