-- The reporter's tables: the delivery log (every attempt, and one row per callback with
-- its latest state), counters of final outcomes, report settings and report runs.
-- No bodies and no phone numbers are stored: ids, statuses, codes, errors and timings.

-- One row per attempt, exactly as the outcome record said; attempt_id makes ingest
-- idempotent (a replayed batch inserts nothing).
CREATE TABLE delivery_attempts (
    attempt_id    text PRIMARY KEY,
    delivery_id   text NOT NULL,
    event_id      text NOT NULL,
    account_id    uuid NOT NULL,
    profile_id    uuid NOT NULL,
    channel       text NOT NULL,
    event         text NOT NULL,
    attempt       integer NOT NULL,
    status        text NOT NULL,
    final         boolean NOT NULL,
    http_status   integer,
    error         text,
    latency_ms    double precision,
    attempted_at  timestamptz NOT NULL
);

CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);

-- One row per callback (delivery_id = the webhook-id): its latest attempt, and where
-- the original event sits so a retry from the delivery log can re-read it.
CREATE TABLE deliveries (
    delivery_id         text PRIMARY KEY,
    account_id          uuid NOT NULL,
    profile_id          uuid NOT NULL,
    event_id            text NOT NULL,
    event               text NOT NULL,
    channel             text NOT NULL,
    attempt             integer NOT NULL,
    attempt_id          text NOT NULL,
    status              text NOT NULL,
    final               boolean NOT NULL,
    http_status         integer,
    error               text,
    latency_ms          double precision,
    first_attempted_at  timestamptz NOT NULL,
    last_attempted_at   timestamptz NOT NULL,
    source_topic        text,
    source_partition    integer,
    source_offset       bigint
);

-- The delivery log lists an account's callbacks newest first, keyset-paginated.
CREATE INDEX deliveries_account_recent
    ON deliveries (account_id, last_attempted_at DESC, delivery_id DESC);
CREATE INDEX deliveries_profile_recent
    ON deliveries (profile_id, last_attempted_at DESC, delivery_id DESC);

-- Final outcomes per account, profile and UTC quarter-hour. Every real time zone's
-- offset is a multiple of 15 minutes, so each bucket lies inside one local day of any
-- zone and a report sums whole buckets for its local day, week or month.
CREATE TABLE delivery_counters (
    account_id  uuid NOT NULL,
    profile_id  uuid NOT NULL,
    bucket      timestamptz NOT NULL,
    delivered   bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, bucket, profile_id)
);

CREATE TABLE report_settings (
    account_id  uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    enabled     boolean NOT NULL,
    frequency   text NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly')),
    recipients  text[] NOT NULL,
    timezone    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per report to send. A scheduled report is unique per (account, kind,
-- period_start): a replica inserts it as its claim with a lease, and may take it over
-- only when the lease has expired without sent_at (its sender died). A send-now request
-- is inserted by the API (kind 'now', no period yet) and claimed the same way.
CREATE TABLE report_runs (
    id            bigserial PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('daily', 'weekly', 'monthly', 'now')),
    period_start  timestamptz,
    period_end    timestamptz,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    lease_until   timestamptz,
    claims        integer NOT NULL DEFAULT 0,
    sent_at       timestamptz,
    last_error    text
);

CREATE UNIQUE INDEX report_runs_scheduled
    ON report_runs (account_id, kind, period_start) WHERE kind <> 'now';
CREATE INDEX report_runs_pending ON report_runs (id) WHERE sent_at IS NULL;
