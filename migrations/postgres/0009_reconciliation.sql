-- Why: finance matches the provider's records of a week one to one with the ledger. Each
-- reconciliation is kept with what it found. A charge at the provider that the ledger does not
-- explain (a duplicate an old system made, say) is kept once per payment intent, and is given back
-- by a repair refund through the same idempotent refund path as any refund: a refund may name the
-- payment intent it refunds, and a stray charge has at most one repair refund (unique).
ALTER TABLE refunds ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer' CHECK (kind IN ('customer', 'repair'));
ALTER TABLE refunds ADD COLUMN payment_intent TEXT;

CREATE TABLE reconciliations (
    id              BIGSERIAL PRIMARY KEY,
    week            TEXT NOT NULL,
    ran_at          TIMESTAMPTZ NOT NULL,
    ran_by          TEXT NOT NULL,
    matched         BIGINT NOT NULL CHECK (matched >= 0),
    unmatched       BIGINT NOT NULL CHECK (unmatched >= 0),
    -- The unmatched items, as JSON.
    items           TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ
);
CREATE INDEX reconciliations_week ON reconciliations (week, id);

CREATE TABLE stray_charges (
    payment_intent TEXT PRIMARY KEY NOT NULL,
    charge_id      TEXT NOT NULL,
    week           TEXT NOT NULL,
    invoice_id     BIGINT REFERENCES invoices (id),
    user_id        TEXT,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
    currency       TEXT NOT NULL,
    found_in       BIGINT NOT NULL REFERENCES reconciliations (id),
    found_at       TIMESTAMPTZ NOT NULL,
    refund_id      BIGINT UNIQUE REFERENCES refunds (id),
    repaired_by    TEXT,
    repaired_at    TIMESTAMPTZ
);
CREATE INDEX stray_charges_week ON stray_charges (week);
