-- Callbacks that ended without a request because a newer status of their message had been
-- delivered already (``ordering: latest``, outcome status 'stale', contract §6), counted
-- beside delivered, failed and cancelled in the same quarter-hour buckets.
ALTER TABLE delivery_counters ADD COLUMN stale bigint NOT NULL DEFAULT 0;
