-- Why: the people on call must hear of a wrong run from the product, not from customers, and
-- customers must be told what happened to their money, each message exactly once in effect.
-- An alert is a row grouped by its key (one open alert per kind and run: a guard that fires
-- again bumps `occurrences`, it does not page again); every message, to staff or to a customer,
-- is an `outbox` row written in the same transaction as the event that causes it, once per
-- event and recipient (`dedupe_key`), and delivered by a worker with retries. The receiver
-- dedupes on `delivery_id`, which every attempt of a message carries.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('run_halted', 'failure_rate', 'run_paused', 'run_aborted',
                                                  'reconciliation', 'run_not_started', 'test')),
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
CREATE UNIQUE INDEX alerts_one_open_per_group ON alerts (group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_to_escalate ON alerts (first_at) WHERE state = 'open' AND escalated_at IS NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    dedupe_key      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('alert', 'escalation', 'test', 'receipt', 'refund', 'declined')),
    channel         TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    recipient       TEXT NOT NULL,
    alert_id        INTEGER REFERENCES alerts (id),
    user_id         TEXT REFERENCES users (id),
    -- What a customer notice is about: the invoice of a receipt or declined charge, the refund.
    subject_id      INTEGER,
    language        TEXT NOT NULL DEFAULT 'en',
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'retrying', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX outbox_alert ON outbox (alert_id);
CREATE INDEX outbox_user ON outbox (user_id, id);
-- The alerts page lists the latest messages of one state (the failed ones among a week's receipts).
CREATE INDEX outbox_state ON outbox (state, id);
