-- The reporter waits for ingest before it reports a period, catches up on periods an
-- outage skipped, and sets aside what it cannot process instead of stalling on it.

-- Ingest progress per partition of the outcomes topic, shared by every reporter
-- replica. A period is reported only once every partition's row has passed its end:
-- ``record_time`` is the newest record timestamp stored from that partition, and
-- ``caught_up_at`` the last moment its stored position had reached the end offset (an
-- idle partition keeps passing that way). NULL in both: the partition is known and not
-- yet reported by its owner, so it holds the reports back. Values only move forward.
CREATE TABLE ingest_progress (
    topic             text NOT NULL,
    partition         integer NOT NULL,
    committed_offset  bigint,
    end_offset        bigint,
    record_time       timestamptz,
    caught_up_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Since when the account's schedule stands as it is (enabled, frequency and time zone):
-- an outage's missed periods are owed only if they closed after it, so turning reports
-- on (again) or changing their frequency never sends a backlog of old periods.
ALTER TABLE report_settings ADD COLUMN schedule_since timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION report_settings_schedule_since() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.schedule_since IS DISTINCT FROM OLD.schedule_since THEN
        RETURN NEW;  -- set explicitly
    END IF;
    IF (NEW.enabled AND NOT OLD.enabled)
       OR NEW.frequency <> OLD.frequency
       OR NEW.timezone <> OLD.timezone THEN
        NEW.schedule_since := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER report_settings_schedule_since
    BEFORE UPDATE ON report_settings
    FOR EACH ROW EXECUTE FUNCTION report_settings_schedule_since();

-- A report or notice whose email cannot be built is set aside, never retried.
ALTER TABLE report_runs ADD COLUMN failed_at timestamptz;
ALTER TABLE profile_notices ADD COLUMN failed_at timestamptz;

DROP INDEX profile_notices_pending;
CREATE INDEX profile_notices_pending ON profile_notices (id)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- An outbox row the broker can never take (a document over the producer's maximum
-- size) is marked failed with its reason, and the relay goes on with later rows.
ALTER TABLE profile_outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE profile_outbox ADD COLUMN last_error text;

DROP INDEX profile_outbox_pending;
CREATE INDEX profile_outbox_pending ON profile_outbox (topic, id)
    WHERE published_at IS NULL AND failed_at IS NULL;
