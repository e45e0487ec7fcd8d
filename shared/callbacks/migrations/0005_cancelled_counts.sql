-- Callbacks that ended without delivery because their profile was disabled or deleted
-- while a retry was pending (outcome status 'cancelled', contract §6), counted beside
-- delivered and failed in the same quarter-hour buckets.
ALTER TABLE delivery_counters ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;
