-- Why: the run's guards (every look of its coordinator) and its dashboard page summed every charge,
-- transfer and attempt of the run each time: at a million passengers each look and each page
-- view read millions of rows, so the guards reacted more slowly and the page answered about once
-- a second as the run grew. The database now keeps the run's running totals itself, in the same
-- transaction as every change of a charge's or transfer's state and of an attempt's outcome,
-- whichever statement makes it. Charges and transfers are only inserted when the run starts,
-- which writes the first totals of its run (`Db::start_run`). SQLite has one writer at a time:
-- one row per run (shard 0). The run's completing step checks them against a full count.
CREATE TABLE run_tallies (
    run_id                INTEGER NOT NULL REFERENCES runs (id),
    shard                 INTEGER NOT NULL,
    charges_pending       INTEGER NOT NULL DEFAULT 0,
    charges_charged       INTEGER NOT NULL DEFAULT 0,
    charges_declined      INTEGER NOT NULL DEFAULT 0,
    charges_uncollectible INTEGER NOT NULL DEFAULT 0,
    charged_minor         INTEGER NOT NULL DEFAULT 0,
    transfers_pending     INTEGER NOT NULL DEFAULT 0,
    transfers_paid        INTEGER NOT NULL DEFAULT 0,
    transfers_failed      INTEGER NOT NULL DEFAULT 0,
    paid_minor            INTEGER NOT NULL DEFAULT 0,
    charge_attempts       INTEGER NOT NULL DEFAULT 0,
    attempts_unknown      INTEGER NOT NULL DEFAULT 0,
    attempts_failed       INTEGER NOT NULL DEFAULT 0,
    -- The passenger charged the most in the run so far (the per-passenger cap's guard).
    top_user              TEXT,
    top_user_minor        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, shard)
) STRICT;

CREATE TRIGGER charges_tally AFTER UPDATE OF state ON charges WHEN OLD.state <> NEW.state
BEGIN
    UPDATE run_tallies SET
        charges_pending = charges_pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
        charges_charged = charges_charged + (NEW.state = 'charged') - (OLD.state = 'charged'),
        charges_declined = charges_declined + (NEW.state = 'declined') - (OLD.state = 'declined'),
        charges_uncollectible = charges_uncollectible + (NEW.state = 'uncollectible') - (OLD.state = 'uncollectible'),
        charged_minor = charged_minor + (NEW.state = 'charged') * NEW.amount_minor - (OLD.state = 'charged') * OLD.amount_minor
    WHERE run_id = NEW.run_id AND shard = 0;
END;

CREATE TRIGGER transfers_tally AFTER UPDATE OF state ON transfers WHEN OLD.state <> NEW.state
BEGIN
    UPDATE run_tallies SET
        transfers_pending = transfers_pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
        transfers_paid = transfers_paid + (NEW.state = 'paid') - (OLD.state = 'paid'),
        transfers_failed = transfers_failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
        paid_minor = paid_minor + (NEW.state = 'paid') * NEW.amount_minor - (OLD.state = 'paid') * OLD.amount_minor
    WHERE run_id = NEW.run_id AND shard = 0;
END;

CREATE TRIGGER charge_attempts_tally_insert AFTER INSERT ON charge_attempts
BEGIN
    UPDATE run_tallies SET
        charge_attempts = charge_attempts + 1,
        attempts_unknown = attempts_unknown + (NEW.outcome = 'unknown'),
        attempts_failed = attempts_failed + (NEW.outcome = 'failed')
    WHERE run_id = (SELECT run_id FROM charges WHERE invoice_id = NEW.invoice_id) AND shard = 0;
END;

CREATE TRIGGER charge_attempts_tally_update AFTER UPDATE OF outcome ON charge_attempts
    WHEN OLD.outcome <> NEW.outcome
BEGIN
    UPDATE run_tallies SET
        attempts_unknown = attempts_unknown + (NEW.outcome = 'unknown') - (OLD.outcome = 'unknown'),
        attempts_failed = attempts_failed + (NEW.outcome = 'failed') - (OLD.outcome = 'failed')
    WHERE run_id = (SELECT run_id FROM charges WHERE invoice_id = NEW.invoice_id) AND shard = 0;
END;

-- What the passenger of each charge has been charged in its run in all (successful attempts).
CREATE VIEW run_user_charged AS
SELECT me.invoice_id, me.run_id, me.user_id,
    (SELECT SUM(a.amount_minor) FROM charges c
     JOIN charge_attempts a ON a.invoice_id = c.invoice_id AND a.outcome = 'succeeded'
     WHERE c.run_id = me.run_id AND c.user_id = me.user_id) AS total
FROM charges me;

-- A success, however it is written: its passenger against the run's top one.
CREATE TRIGGER charge_attempts_top_user AFTER UPDATE OF outcome ON charge_attempts
    WHEN NEW.outcome = 'succeeded' AND OLD.outcome <> 'succeeded'
BEGIN
    UPDATE run_tallies SET
        top_user = (SELECT user_id FROM run_user_charged WHERE invoice_id = NEW.invoice_id),
        top_user_minor = (SELECT total FROM run_user_charged WHERE invoice_id = NEW.invoice_id)
    WHERE run_id = (SELECT run_id FROM charges WHERE invoice_id = NEW.invoice_id) AND shard = 0
      AND top_user_minor < (SELECT total FROM run_user_charged WHERE invoice_id = NEW.invoice_id);
END;

CREATE TRIGGER charge_attempts_top_user_insert AFTER INSERT ON charge_attempts WHEN NEW.outcome = 'succeeded'
BEGIN
    UPDATE run_tallies SET
        top_user = (SELECT user_id FROM run_user_charged WHERE invoice_id = NEW.invoice_id),
        top_user_minor = (SELECT total FROM run_user_charged WHERE invoice_id = NEW.invoice_id)
    WHERE run_id = (SELECT run_id FROM charges WHERE invoice_id = NEW.invoice_id) AND shard = 0
      AND top_user_minor < (SELECT total FROM run_user_charged WHERE invoice_id = NEW.invoice_id);
END;

-- The run's throughput for its page: successful charges and transfers per five seconds (slot =
-- the success's Unix time divided by 5), so the page's sparkline and rate read a few rows.
CREATE TABLE run_throughput (
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    slot      INTEGER NOT NULL,
    shard     INTEGER NOT NULL,
    successes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, slot, shard)
) STRICT;

CREATE TRIGGER charge_attempts_throughput AFTER UPDATE OF outcome ON charge_attempts
    WHEN NEW.outcome = 'succeeded' AND OLD.outcome <> 'succeeded' AND NEW.finished_at IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO run_throughput (run_id, slot, shard)
        SELECT run_id, CAST(strftime('%s', NEW.finished_at) AS INTEGER) / 5, 0 FROM charges WHERE invoice_id = NEW.invoice_id;
    UPDATE run_throughput SET successes = successes + 1
        WHERE run_id = (SELECT run_id FROM charges WHERE invoice_id = NEW.invoice_id)
          AND slot = CAST(strftime('%s', NEW.finished_at) AS INTEGER) / 5 AND shard = 0;
END;

CREATE TRIGGER transfer_attempts_throughput AFTER UPDATE OF outcome ON transfer_attempts
    WHEN NEW.outcome = 'succeeded' AND OLD.outcome <> 'succeeded' AND NEW.finished_at IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO run_throughput (run_id, slot, shard)
        SELECT run_id, CAST(strftime('%s', NEW.finished_at) AS INTEGER) / 5, 0 FROM transfers WHERE payout_id = NEW.payout_id;
    UPDATE run_throughput SET successes = successes + 1
        WHERE run_id = (SELECT run_id FROM transfers WHERE payout_id = NEW.payout_id)
          AND slot = CAST(strftime('%s', NEW.finished_at) AS INTEGER) / 5 AND shard = 0;
END;

-- The runs already made.
INSERT INTO run_tallies (run_id, shard, charges_pending, charges_charged, charges_declined,
    charges_uncollectible, charged_minor, transfers_pending, transfers_paid, transfers_failed,
    paid_minor, charge_attempts, attempts_unknown, attempts_failed, top_user, top_user_minor)
SELECT r.id, 0,
    (SELECT COUNT(*) FROM charges c WHERE c.run_id = r.id AND c.state = 'pending'),
    (SELECT COUNT(*) FROM charges c WHERE c.run_id = r.id AND c.state = 'charged'),
    (SELECT COUNT(*) FROM charges c WHERE c.run_id = r.id AND c.state = 'declined'),
    (SELECT COUNT(*) FROM charges c WHERE c.run_id = r.id AND c.state = 'uncollectible'),
    (SELECT COALESCE(SUM(amount_minor), 0) FROM charges c WHERE c.run_id = r.id AND c.state = 'charged'),
    (SELECT COUNT(*) FROM transfers t WHERE t.run_id = r.id AND t.state = 'pending'),
    (SELECT COUNT(*) FROM transfers t WHERE t.run_id = r.id AND t.state = 'paid'),
    (SELECT COUNT(*) FROM transfers t WHERE t.run_id = r.id AND t.state = 'failed'),
    (SELECT COALESCE(SUM(amount_minor), 0) FROM transfers t WHERE t.run_id = r.id AND t.state = 'paid'),
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = r.id),
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = r.id AND a.outcome = 'unknown'),
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = r.id AND a.outcome = 'failed'),
    (SELECT c.user_id FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id
        WHERE c.run_id = r.id AND a.outcome = 'succeeded' GROUP BY c.user_id ORDER BY SUM(a.amount_minor) DESC LIMIT 1),
    COALESCE((SELECT SUM(a.amount_minor) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id
        WHERE c.run_id = r.id AND a.outcome = 'succeeded' GROUP BY c.user_id ORDER BY 1 DESC LIMIT 1), 0)
FROM runs r;
