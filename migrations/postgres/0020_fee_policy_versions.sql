-- Why: the fee policy was fixed in code. It is now a list of versions, each proposed by one
-- finance or admin member and approved by another, in force from a billing week until a later
-- version replaces it. A version is never edited: a correction is a new version.
CREATE TABLE fee_policy_versions (
    id                BIGSERIAL PRIMARY KEY,
    -- The first billing week it prices, 'YYYY-Www' (which sorts in time order).
    effective_week    TEXT COLLATE "C" NOT NULL CHECK (length(effective_week) = 8),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    base_minor        BIGINT NOT NULL CHECK (base_minor >= 0),
    per_km_minor      BIGINT NOT NULL CHECK (per_km_minor >= 0),
    platform_fee_bps  BIGINT NOT NULL CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    no_show_fee_minor BIGINT NOT NULL CHECK (no_show_fee_minor >= 0),
    note              TEXT NOT NULL DEFAULT '',
    -- proposed: waiting for a second person; approved: in force from its week; withdrawn: never
    -- approved; superseded: approved, then replaced by another version for the same week before
    -- that week began.
    status            TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'withdrawn', 'superseded')),
    proposed_by       BIGINT NOT NULL REFERENCES staff (id),
    proposed_at       TIMESTAMPTZ NOT NULL,
    decided_by        BIGINT REFERENCES staff (id),
    decided_at        TIMESTAMPTZ,
    -- Two people: the approver is never the proposer.
    CHECK (status <> 'approved' OR (decided_by IS NOT NULL AND decided_by <> proposed_by)),
    CHECK ((status = 'proposed') = (decided_at IS NULL))
);

-- One version in force per starting week.
CREATE UNIQUE INDEX fee_policy_versions_one_per_week
    ON fee_policy_versions (effective_week) WHERE status = 'approved';

-- The version a week was priced with (NULL: the built-in policy).
ALTER TABLE weeks ADD COLUMN fee_policy_version BIGINT REFERENCES fee_policy_versions (id);
