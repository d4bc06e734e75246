-- Why: the provider forgets an idempotency key after a day, so an attempt older than the run's
-- key-reuse window is never sent again under its key: the product looks the movement up in the
-- provider's lists instead. When that lookup cannot be made, the charge or payout waits for a
-- person, out of the workers' reach:
-- - held: why it waits (`lookup`: the provider could not be asked what became of the attempt);
-- - held_detail: the provider's or the run's words for it;
-- - release_proposed_by: the finance member who asked to mark it as not made at the provider,
--   which a second member confirms (then a new attempt, with a new key, goes out).
-- A refund sends every attempt under one key; refunds.key_sent_at is when its current key was
-- first sent, so that a refund past the window is looked up, and sent again only under a new key.
ALTER TABLE charges ADD COLUMN held TEXT CHECK (held IS NULL OR held = 'lookup');
ALTER TABLE charges ADD COLUMN held_detail TEXT;
ALTER TABLE charges ADD COLUMN release_proposed_by TEXT;
ALTER TABLE transfers ADD COLUMN held TEXT CHECK (held IS NULL OR held = 'lookup');
ALTER TABLE transfers ADD COLUMN held_detail TEXT;
ALTER TABLE transfers ADD COLUMN release_proposed_by TEXT;
ALTER TABLE refunds ADD COLUMN key_sent_at TIMESTAMPTZ;
