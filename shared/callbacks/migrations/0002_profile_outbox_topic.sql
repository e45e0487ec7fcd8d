-- Each outbox row names the topic it goes to, and a relay publishes only its own
-- topic's rows. Deployments (or test runs) with different topic prefixes can then
-- share one database without one relay publishing another's changes.

ALTER TABLE profile_outbox ADD COLUMN topic text NOT NULL DEFAULT 'callbacks.profiles';
ALTER TABLE profile_outbox ALTER COLUMN topic DROP DEFAULT;

DROP INDEX profile_outbox_pending;
CREATE INDEX profile_outbox_pending ON profile_outbox (topic, id) WHERE published_at IS NULL;
