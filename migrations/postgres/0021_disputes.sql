-- Why: card issuers take money back through disputes (chargebacks), weeks after a charge. The
-- provider's dispute events are stored here once per dispute, their status only moving forward,
-- so a disputed invoice is shown as such, is not refunded behind the issuer's back, and finance
-- answers it before its evidence is due. The money is in the ledger (withdrawal and fee,
-- reinstatement when won, loss when lost); too many disputes in one week raise an alert.
CREATE TABLE disputes (
    id                    BIGSERIAL PRIMARY KEY,
    -- The provider's dispute id (dp_…).
    provider_id           TEXT NOT NULL UNIQUE,
    invoice_id            BIGINT NOT NULL REFERENCES invoices (id),
    week                  TEXT COLLATE "C" NOT NULL,
    user_id               TEXT NOT NULL,
    charge_id             TEXT NOT NULL,
    payment_intent        TEXT,
    amount_minor          BIGINT NOT NULL CHECK (amount_minor > 0),
    fee_minor             BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    currency              TEXT NOT NULL,
    reason                TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('warning_needs_response', 'warning_under_review',
                                                          'warning_closed', 'needs_response', 'under_review',
                                                          'won', 'lost')),
    evidence_due_at       TIMESTAMPTZ,
    -- Evidence sent from the product: written before the call (its idempotency key), then who
    -- sent it and when the provider took it.
    evidence_key          TEXT UNIQUE,
    evidence_note         TEXT,
    evidence_by           TEXT,
    evidence_sent_at      TIMESTAMPTZ,
    opened_at             TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    closed_at             TIMESTAMPTZ
);
CREATE INDEX disputes_due ON disputes (evidence_due_at);
CREATE INDEX disputes_invoice ON disputes (invoice_id);
CREATE INDEX disputes_week ON disputes (week);
-- A dispute names the payment intent it takes back: its invoice is found through the charge
-- attempt that made it.
CREATE INDEX charge_attempts_provider ON charge_attempts (provider_id) WHERE provider_id IS NOT NULL;

-- A dispute alert, grouped by week.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('run_halted', 'failure_rate', 'run_paused', 'run_aborted', 'reconciliation',
                    'run_not_started', 'test', 'disputes'));
