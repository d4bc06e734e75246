-- Why: card issuers take money back through disputes (chargebacks), weeks after a charge. The
-- provider's dispute events are stored here once per dispute, their status only moving forward,
-- so a disputed invoice is shown as such, is not refunded behind the issuer's back, and finance
-- answers it before its evidence is due. The money is in the ledger (withdrawal and fee,
-- reinstatement when won, loss when lost); too many disputes in one week raise an alert.
CREATE TABLE disputes (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The provider's dispute id (dp_…).
    provider_id           TEXT NOT NULL UNIQUE,
    invoice_id            INTEGER NOT NULL REFERENCES invoices (id),
    week                  TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    charge_id             TEXT NOT NULL,
    payment_intent        TEXT,
    amount_minor          INTEGER NOT NULL CHECK (amount_minor > 0),
    fee_minor             INTEGER NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    currency              TEXT NOT NULL,
    reason                TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('warning_needs_response', 'warning_under_review',
                                                          'warning_closed', 'needs_response', 'under_review',
                                                          'won', 'lost')),
    evidence_due_at       TEXT,
    -- Evidence sent from the product: written before the call (its idempotency key), then who
    -- sent it and when the provider took it.
    evidence_key          TEXT UNIQUE,
    evidence_note         TEXT,
    evidence_by           TEXT,
    evidence_sent_at      TEXT,
    opened_at             TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    closed_at             TEXT
) STRICT;
CREATE INDEX disputes_due ON disputes (evidence_due_at);
CREATE INDEX disputes_invoice ON disputes (invoice_id);
CREATE INDEX disputes_week ON disputes (week);
-- A dispute names the payment intent it takes back: its invoice is found through the charge
-- attempt that made it.
CREATE INDEX charge_attempts_provider ON charge_attempts (provider_id) WHERE provider_id IS NOT NULL;

-- A dispute alert, grouped by week. SQLite changes a CHECK by rebuilding the table; the outbox's
-- references to it are checked when the migration commits.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE alerts_rebuilt (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('run_halted', 'failure_rate', 'run_paused', 'run_aborted',
                                                  'reconciliation', 'run_not_started', 'test', 'disputes')),
    group_key       TEXT NOT NULL CHECK (length(group_key) BETWEEN 1 AND 200),
    run_id          INTEGER REFERENCES runs (id),
    week            TEXT,
    title           TEXT NOT NULL,
    detail          TEXT NOT NULL,
    link            TEXT,
    occurrences     INTEGER NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    state           TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    first_at        TEXT NOT NULL,
    last_at         TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    resolved_by     TEXT,
    resolved_at     TEXT,
    escalated_at    TEXT
) STRICT;
INSERT INTO alerts_rebuilt SELECT * FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_rebuilt RENAME TO alerts;
CREATE UNIQUE INDEX alerts_one_open_per_group ON alerts (group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_to_escalate ON alerts (first_at) WHERE state = 'open' AND escalated_at IS NULL;
