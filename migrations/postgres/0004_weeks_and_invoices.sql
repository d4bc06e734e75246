-- Why: staff approve exactly what the run will charge. A week's preview is stored (so a million
-- invoices can be paged and searched), and approving it freezes it: from then on its invoices
-- and payouts never change and each carries a hash of its content that the run checks. A ride
-- is billed in one week only (billed_rides' primary key); a ride that arrives after its week was
-- approved waits in late_rides for the next approval, where it becomes a late line.

-- Ids and the name key compare byte by byte (COLLATE "C"), as in SQLite, so that prefix search
-- and keyset paging use the indexes and order rows the same way on both databases.
-- A lowercase copy of the name (Unicode lowercase, made by the server) for prefix search.
ALTER TABLE users ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(name);
CREATE INDEX users_name_key ON users (name_key);

CREATE TABLE weeks (
    week          TEXT PRIMARY KEY CHECK (length(week) = 8),
    starts_at     TIMESTAMPTZ NOT NULL,
    ends_at       TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    -- previewed: a draft, recomputed when its rides change; approved: frozen.
    status        TEXT NOT NULL CHECK (status IN ('previewed', 'approved')),
    -- What the draft was computed from (the week's rides, the late rides, the fee policy).
    inputs_hash   TEXT NOT NULL,
    -- Of every invoice and payout: what staff saw is what they approve.
    content_hash  TEXT NOT NULL,
    invoices      BIGINT NOT NULL CHECK (invoices >= 0),
    payouts       BIGINT NOT NULL CHECK (payouts >= 0),
    charged_minor BIGINT NOT NULL CHECK (charged_minor >= 0),
    fees_minor    BIGINT NOT NULL CHECK (fees_minor >= 0),
    payouts_minor BIGINT NOT NULL CHECK (payouts_minor >= 0),
    late_lines    BIGINT NOT NULL CHECK (late_lines >= 0),
    anomalies     TEXT NOT NULL DEFAULT '[]',
    computed_at   TIMESTAMPTZ NOT NULL,
    approved_at   TIMESTAMPTZ,
    approved_by   TEXT,
    CHECK (fees_minor + payouts_minor = charged_minor),
    CHECK ((status = 'approved') = (approved_at IS NOT NULL))
);

CREATE TABLE invoices (
    id           BIGSERIAL PRIMARY KEY,
    week         TEXT NOT NULL REFERENCES weeks (week),
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    currency     TEXT NOT NULL,
    total_minor  BIGINT NOT NULL CHECK (total_minor > 0),
    lines        BIGINT NOT NULL CHECK (lines > 0),
    late_lines   BIGINT NOT NULL CHECK (late_lines >= 0),
    content_hash TEXT NOT NULL,
    anomalies    TEXT NOT NULL DEFAULT '[]',
    flagged      BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (week, user_id)
);
CREATE INDEX invoices_user ON invoices (user_id, week);
CREATE INDEX invoices_flagged ON invoices (week, flagged, user_id);

CREATE TABLE invoice_lines (
    invoice_id   BIGINT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    ride_id      TEXT NOT NULL REFERENCES rides (ride_id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    attendance   TEXT NOT NULL CHECK (attendance IN ('completed', 'no_show')),
    ended_at     TIMESTAMPTZ NOT NULL,
    late         BOOLEAN NOT NULL,
    PRIMARY KEY (invoice_id, ride_id)
);
CREATE INDEX invoice_lines_ride ON invoice_lines (ride_id);

CREATE TABLE payouts (
    id           BIGSERIAL PRIMARY KEY,
    week         TEXT NOT NULL REFERENCES weeks (week),
    driver_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    currency     TEXT NOT NULL,
    gross_minor  BIGINT NOT NULL CHECK (gross_minor > 0),
    fees_minor   BIGINT NOT NULL CHECK (fees_minor >= 0),
    total_minor  BIGINT NOT NULL CHECK (total_minor >= 0),
    rides        BIGINT NOT NULL CHECK (rides > 0),
    content_hash TEXT NOT NULL,
    CHECK (fees_minor + total_minor = gross_minor),
    UNIQUE (week, driver_id)
);

CREATE TABLE payout_lines (
    payout_id   BIGINT NOT NULL REFERENCES payouts (id) ON DELETE CASCADE,
    ride_id     TEXT NOT NULL REFERENCES rides (ride_id),
    gross_minor BIGINT NOT NULL CHECK (gross_minor > 0),
    fee_minor   BIGINT NOT NULL CHECK (fee_minor >= 0),
    net_minor   BIGINT NOT NULL CHECK (net_minor >= 0),
    late        BOOLEAN NOT NULL,
    CHECK (fee_minor + net_minor = gross_minor),
    PRIMARY KEY (payout_id, ride_id)
);

-- Written when a week is approved: a ride is billed in exactly one week.
CREATE TABLE billed_rides (
    ride_id TEXT PRIMARY KEY REFERENCES rides (ride_id),
    week    TEXT NOT NULL REFERENCES weeks (week)
);

-- Rides stored after their own week was approved, until an approval bills them as late lines.
CREATE TABLE late_rides (
    ride_id   TEXT PRIMARY KEY REFERENCES rides (ride_id),
    ended_at  TIMESTAMPTZ NOT NULL,
    queued_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX late_rides_ended_at ON late_rides (ended_at);
