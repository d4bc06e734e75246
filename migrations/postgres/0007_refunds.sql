-- Why: a refund is the safest button in the product. Each refund request is stored once (its
-- request id is unique: a double click, a retry or a second tab gives the same refund); what
-- may still be refunded of a charged invoice is a counter the database checks in the same
-- transaction as the refund record (`refund_balances`: reserved never above charged); each
-- refund carries one idempotency key, written with it before the provider is called and reused
-- by every retry; at most one successful provider attempt per refund.

CREATE TABLE refund_balances (
    invoice_id     BIGINT PRIMARY KEY REFERENCES invoices (id),
    charged_minor  BIGINT NOT NULL CHECK (charged_minor > 0),
    -- Refunds made, under way or waiting for approval.
    reserved_minor BIGINT NOT NULL DEFAULT 0,
    CHECK (reserved_minor >= 0 AND reserved_minor <= charged_minor)
);

CREATE TABLE refunds (
    id              BIGSERIAL PRIMARY KEY,
    request_id      TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    invoice_id      BIGINT NOT NULL REFERENCES invoices (id),
    user_id         TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer', 'service_issue', 'other')),
    note            TEXT NOT NULL,
    -- The ride ids of the chosen lines, comma-separated; empty for an amount of the invoice.
    lines           TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'pending', 'succeeded', 'failed', 'rejected')),
    requested_by    TEXT NOT NULL,
    requested_by_id BIGINT,
    requested_at    TIMESTAMPTZ NOT NULL,
    decided_by      TEXT,
    decided_at      TIMESTAMPTZ,
    decision_note   TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at         TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    provider_id     TEXT,
    detail          TEXT,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_invoice ON refunds (invoice_id, id);
CREATE INDEX refunds_user ON refunds (user_id, id);
CREATE INDEX refunds_work ON refunds (state, next_at);
CREATE INDEX refunds_requester ON refunds (requested_by_id, requested_at);

-- Every call to the provider for a refund, written before the call; all with the refund's key.
CREATE TABLE refund_attempts (
    id           BIGSERIAL PRIMARY KEY,
    refund_id    BIGINT NOT NULL REFERENCES refunds (id),
    attempt      BIGINT NOT NULL CHECK (attempt >= 1),
    outcome      TEXT NOT NULL CHECK (outcome IN ('started', 'succeeded', 'failed', 'unknown')),
    provider_id  TEXT,
    detail       TEXT,
    worker       TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    UNIQUE (refund_id, attempt)
);
CREATE UNIQUE INDEX refund_attempts_one_success ON refund_attempts (refund_id) WHERE outcome = 'succeeded';
CREATE INDEX payouts_driver ON payouts (driver_id, week);
