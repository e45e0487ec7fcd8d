-- Bulk recovery (contract §7): one row per POST /v1/callback-profiles/{id}/recover.
-- The window is [since, window_end): window_end is `until`, or the request time when
-- `until` is absent or later, so callbacks that start after the request are never in
-- it. Callbacks are taken in (first_attempted_at, delivery_id) order, which a
-- redelivery does not change; after_at/after_id is the last one handed to the
-- redeliver topic, so a replica that takes the recovery over goes on from there.

CREATE TABLE recoveries (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    profile_id    uuid NOT NULL,
    since         timestamptz NOT NULL,
    until         timestamptz,
    window_end    timestamptz NOT NULL,
    filter        text NOT NULL CHECK (filter IN ('failed', 'all')),
    status        text NOT NULL CHECK (status IN ('running', 'done')),
    total         integer NOT NULL,
    done          integer NOT NULL DEFAULT 0,
    after_at      timestamptz,
    after_id      text,
    -- The replica working on it, until lease_until; another may claim it only after.
    claimed_by    text,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- The same window of one profile twice while one runs is a 409: this index decides.
CREATE UNIQUE INDEX recoveries_one_running_per_window
    ON recoveries (profile_id, since, (COALESCE(until, 'infinity'::timestamptz)))
    WHERE status = 'running';
CREATE INDEX recoveries_running ON recoveries (created_at) WHERE status = 'running';

-- A recovery pages through one profile's callbacks in first-attempt order.
CREATE INDEX deliveries_profile_first
    ON deliveries (profile_id, first_attempted_at, delivery_id);
