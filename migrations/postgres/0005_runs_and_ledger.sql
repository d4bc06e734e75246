-- Why: the weekly run charges each frozen invoice and pays each frozen payout exactly once,
-- whatever crashes, retries or extra workers happen around it. The database enforces it: one run
-- per week, one charging row per invoice claimed under a lease, every provider call written down
-- with its idempotency key before it is made, and at most one successful attempt per invoice and
-- per payout (partial unique indexes). Every money movement is a balanced double-entry ledger
-- transaction, recorded once per cause (unique kind and reference).

CREATE TABLE runs (
    id             BIGSERIAL PRIMARY KEY,
    week           TEXT NOT NULL UNIQUE REFERENCES weeks (week),
    -- Where the work is: the canary slice, the rest of the invoices, the payouts, done.
    phase          TEXT NOT NULL CHECK (phase IN ('canary', 'charging', 'paying_out', 'completed')),
    -- Whether workers may make new provider calls.
    control        TEXT NOT NULL CHECK (control IN ('running', 'paused', 'halted', 'aborted')),
    reason         TEXT,
    currency       TEXT NOT NULL,
    canary_size    BIGINT NOT NULL CHECK (canary_size >= 0),
    expected_minor BIGINT NOT NULL CHECK (expected_minor >= 0),
    started_at     TIMESTAMPTZ NOT NULL,
    started_by     TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ
);

-- One row per invoice of a run: its state, how often it was tried, and who holds it.
CREATE TABLE charges (
    invoice_id  BIGINT PRIMARY KEY REFERENCES invoices (id),
    run_id      BIGINT NOT NULL REFERENCES runs (id),
    seq         BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'charged', 'declined', 'uncollectible')),
    attempts    BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at     TIMESTAMPTZ NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    UNIQUE (run_id, seq)
);
CREATE INDEX charges_work ON charges (run_id, state, next_at);
CREATE INDEX charges_user ON charges (run_id, user_id);

-- Every call to the provider to charge an invoice, written before the call.
CREATE TABLE charge_attempts (
    id              BIGSERIAL PRIMARY KEY,
    invoice_id      BIGINT NOT NULL REFERENCES invoices (id),
    attempt         BIGINT NOT NULL CHECK (attempt >= 1),
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    outcome         TEXT NOT NULL CHECK (outcome IN ('started', 'succeeded', 'declined', 'failed', 'unknown')),
    provider_id     TEXT,
    detail          TEXT,
    worker          TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    UNIQUE (invoice_id, attempt)
);
CREATE UNIQUE INDEX charge_attempts_one_success ON charge_attempts (invoice_id) WHERE outcome = 'succeeded';

CREATE TABLE transfers (
    payout_id   BIGINT PRIMARY KEY REFERENCES payouts (id),
    run_id      BIGINT NOT NULL REFERENCES runs (id),
    seq         BIGINT NOT NULL,
    driver_id   TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'paid', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at     TIMESTAMPTZ NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    UNIQUE (run_id, seq)
);
CREATE INDEX transfers_work ON transfers (run_id, state, next_at);

CREATE TABLE transfer_attempts (
    id              BIGSERIAL PRIMARY KEY,
    payout_id       BIGINT NOT NULL REFERENCES payouts (id),
    attempt         BIGINT NOT NULL CHECK (attempt >= 1),
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    outcome         TEXT NOT NULL CHECK (outcome IN ('started', 'succeeded', 'failed', 'unknown')),
    provider_id     TEXT,
    detail          TEXT,
    worker          TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    UNIQUE (payout_id, attempt)
);
CREATE UNIQUE INDEX transfer_attempts_one_success ON transfer_attempts (payout_id) WHERE outcome = 'succeeded';

-- The provider's objects for a user: a customer with a card (passengers), a connected account
-- (drivers). Made on first use in test mode, idempotently.
CREATE TABLE provider_accounts (
    user_id        TEXT PRIMARY KEY REFERENCES users (id),
    customer_id    TEXT,
    payment_method TEXT,
    account_id     TEXT
);

CREATE TABLE ledger_transactions (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, reference)
);

CREATE TABLE ledger_postings (
    transaction_id BIGINT NOT NULL REFERENCES ledger_transactions (id),
    account        TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);
CREATE INDEX ledger_postings_account ON ledger_postings (account);

-- What happened in a run, for its page and its audit.
CREATE TABLE run_events (
    id      BIGSERIAL PRIMARY KEY,
    run_id  BIGINT NOT NULL REFERENCES runs (id),
    at      TIMESTAMPTZ NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
