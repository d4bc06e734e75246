-- Why: the product bills live customers with the provider objects the carpool app sends, and
-- must say why an invoice or a payout did not go through instead of retrying blindly.
-- - charges.reason: why an invoice ended uncollectible when no call could be made
--   (`no_payment_method`: the passenger has no customer or card at the provider).
-- - transfers.waiting_for / waiting_detail: a payout that waits, still pending, for `funds`
--   (the platform's available balance cannot cover it yet) or for an `account` (the driver has
--   no connected account yet); next_at says until when. Never counted as a failed payout.
-- - provider_rate: the provider account's call limit, shared by every process through the
--   database: calls granted per twentieth of a second (slot = milliseconds since the epoch / 50),
--   and what the latest grant of the slot gave (read back by the statement that granted it).
ALTER TABLE charges ADD COLUMN reason TEXT;
ALTER TABLE transfers ADD COLUMN waiting_for TEXT CHECK (waiting_for IS NULL OR waiting_for IN ('funds', 'account'));
ALTER TABLE transfers ADD COLUMN waiting_detail TEXT;
CREATE TABLE provider_rate (
    slot BIGINT PRIMARY KEY NOT NULL,
    used BIGINT NOT NULL CHECK (used >= 0),
    last_grant BIGINT NOT NULL CHECK (last_grant >= 0)
);
