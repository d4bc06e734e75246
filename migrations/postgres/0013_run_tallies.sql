-- Why: the run's guards (every look of its coordinator) and its dashboard page summed every charge,
-- transfer and attempt of the run each time: at a million passengers each look and each page
-- view read millions of rows, so the guards reacted more slowly and the page answered about once
-- a second as the run grew. The database now keeps the run's running totals itself, in the same
-- transaction as every change of a charge's or transfer's state and of an attempt's outcome,
-- whichever statement makes it. Charges and transfers are only inserted when the run starts,
-- which writes the first totals of its run (`Db::start_run`). The run's completing step checks
-- them against a full count.
--
-- Several processes' workers record outcomes at once: each database connection adds to its own
-- row of the run (shard = its backend's pid modulo 64), so their transactions do not queue on
-- one row; the totals are the sums over the shards. The triggers run once per statement, over
-- the statement's changed rows.
CREATE TABLE run_tallies (
    run_id                BIGINT NOT NULL REFERENCES runs (id),
    shard                 INTEGER NOT NULL,
    charges_pending       BIGINT NOT NULL DEFAULT 0,
    charges_charged       BIGINT NOT NULL DEFAULT 0,
    charges_declined      BIGINT NOT NULL DEFAULT 0,
    charges_uncollectible BIGINT NOT NULL DEFAULT 0,
    charged_minor         BIGINT NOT NULL DEFAULT 0,
    transfers_pending     BIGINT NOT NULL DEFAULT 0,
    transfers_paid        BIGINT NOT NULL DEFAULT 0,
    transfers_failed      BIGINT NOT NULL DEFAULT 0,
    paid_minor            BIGINT NOT NULL DEFAULT 0,
    charge_attempts       BIGINT NOT NULL DEFAULT 0,
    attempts_unknown      BIGINT NOT NULL DEFAULT 0,
    attempts_failed       BIGINT NOT NULL DEFAULT 0,
    -- The passenger charged the most in the run so far (the per-passenger cap's guard).
    top_user              TEXT,
    top_user_minor        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, shard)
);

CREATE FUNCTION run_tallies_charges() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_tallies AS t (run_id, shard, charges_pending, charges_charged, charges_declined,
        charges_uncollectible, charged_minor)
    SELECT n.run_id, pg_backend_pid() % 64,
        SUM((n.state = 'pending')::int - (o.state = 'pending')::int),
        SUM((n.state = 'charged')::int - (o.state = 'charged')::int),
        SUM((n.state = 'declined')::int - (o.state = 'declined')::int),
        SUM((n.state = 'uncollectible')::int - (o.state = 'uncollectible')::int),
        SUM(CASE WHEN n.state = 'charged' THEN n.amount_minor ELSE 0 END
            - CASE WHEN o.state = 'charged' THEN o.amount_minor ELSE 0 END)
    FROM new_rows n JOIN old_rows o ON o.invoice_id = n.invoice_id
    WHERE n.state <> o.state
    GROUP BY n.run_id
    ON CONFLICT (run_id, shard) DO UPDATE SET
        charges_pending = t.charges_pending + excluded.charges_pending,
        charges_charged = t.charges_charged + excluded.charges_charged,
        charges_declined = t.charges_declined + excluded.charges_declined,
        charges_uncollectible = t.charges_uncollectible + excluded.charges_uncollectible,
        charged_minor = t.charged_minor + excluded.charged_minor;
    RETURN NULL;
END $$;
CREATE TRIGGER charges_tally AFTER UPDATE ON charges
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_tallies_charges();

CREATE FUNCTION run_tallies_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_tallies AS t (run_id, shard, transfers_pending, transfers_paid, transfers_failed, paid_minor)
    SELECT n.run_id, pg_backend_pid() % 64,
        SUM((n.state = 'pending')::int - (o.state = 'pending')::int),
        SUM((n.state = 'paid')::int - (o.state = 'paid')::int),
        SUM((n.state = 'failed')::int - (o.state = 'failed')::int),
        SUM(CASE WHEN n.state = 'paid' THEN n.amount_minor ELSE 0 END
            - CASE WHEN o.state = 'paid' THEN o.amount_minor ELSE 0 END)
    FROM new_rows n JOIN old_rows o ON o.payout_id = n.payout_id
    WHERE n.state <> o.state
    GROUP BY n.run_id
    ON CONFLICT (run_id, shard) DO UPDATE SET
        transfers_pending = t.transfers_pending + excluded.transfers_pending,
        transfers_paid = t.transfers_paid + excluded.transfers_paid,
        transfers_failed = t.transfers_failed + excluded.transfers_failed,
        paid_minor = t.paid_minor + excluded.paid_minor;
    RETURN NULL;
END $$;
CREATE TRIGGER transfers_tally AFTER UPDATE ON transfers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_tallies_transfers();

-- The run's throughput for its page: successful charges and transfers per five seconds (slot =
-- the success's Unix time divided by 5), so the page's sparkline and rate read a few rows.
CREATE TABLE run_throughput (
    run_id    BIGINT NOT NULL REFERENCES runs (id),
    slot      BIGINT NOT NULL,
    shard     INTEGER NOT NULL,
    successes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, slot, shard)
);

-- What newly succeeded charge attempts (their invoices) add: what each one's passenger has been
-- charged in the run in all, the largest per run against the shard's; and the throughput.
CREATE FUNCTION run_tallies_succeeded(succeeded BIGINT[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO run_tallies AS t (run_id, shard, top_user, top_user_minor)
    SELECT DISTINCT ON (me.run_id) me.run_id, pg_backend_pid() % 64, me.user_id,
        (SELECT SUM(a.amount_minor) FROM charges c
         JOIN charge_attempts a ON a.invoice_id = c.invoice_id AND a.outcome = 'succeeded'
         WHERE c.run_id = me.run_id AND c.user_id = me.user_id)::bigint AS total
    FROM charges me WHERE me.invoice_id = ANY (succeeded)
    ORDER BY me.run_id, total DESC
    ON CONFLICT (run_id, shard) DO UPDATE SET
        top_user = CASE WHEN excluded.top_user_minor > t.top_user_minor THEN excluded.top_user ELSE t.top_user END,
        top_user_minor = GREATEST(t.top_user_minor, excluded.top_user_minor);
    INSERT INTO run_throughput AS t (run_id, slot, shard, successes)
    SELECT c.run_id, floor(extract(epoch FROM a.finished_at) / 5)::bigint, pg_backend_pid() % 64, COUNT(*)
    FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id
    WHERE a.invoice_id = ANY (succeeded) AND a.outcome = 'succeeded' AND a.finished_at IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (run_id, slot, shard) DO UPDATE SET successes = t.successes + excluded.successes;
$$;

-- Attempts: how many, how many without a known outcome or failed, and the new successes'
-- passengers. One function for inserts (no old rows) and updates.
CREATE FUNCTION run_tallies_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO run_tallies AS t (run_id, shard, charge_attempts, attempts_unknown, attempts_failed)
        SELECT c.run_id, pg_backend_pid() % 64, COUNT(*),
            SUM((n.outcome = 'unknown')::int), SUM((n.outcome = 'failed')::int)
        FROM new_rows n JOIN charges c ON c.invoice_id = n.invoice_id
        GROUP BY c.run_id
        ON CONFLICT (run_id, shard) DO UPDATE SET
            charge_attempts = t.charge_attempts + excluded.charge_attempts,
            attempts_unknown = t.attempts_unknown + excluded.attempts_unknown,
            attempts_failed = t.attempts_failed + excluded.attempts_failed;
        PERFORM run_tallies_succeeded(ARRAY(SELECT invoice_id FROM new_rows WHERE outcome = 'succeeded'));
    ELSE
        INSERT INTO run_tallies AS t (run_id, shard, attempts_unknown, attempts_failed)
        SELECT c.run_id, pg_backend_pid() % 64,
            SUM((n.outcome = 'unknown')::int - (o.outcome = 'unknown')::int),
            SUM((n.outcome = 'failed')::int - (o.outcome = 'failed')::int)
        FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN charges c ON c.invoice_id = n.invoice_id
        WHERE n.outcome <> o.outcome
        GROUP BY c.run_id
        ON CONFLICT (run_id, shard) DO UPDATE SET
            attempts_unknown = t.attempts_unknown + excluded.attempts_unknown,
            attempts_failed = t.attempts_failed + excluded.attempts_failed;
        PERFORM run_tallies_succeeded(ARRAY(SELECT n.invoice_id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.outcome = 'succeeded' AND o.outcome <> 'succeeded'));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER charge_attempts_tally_insert AFTER INSERT ON charge_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_tallies_attempts();
CREATE TRIGGER charge_attempts_tally_update AFTER UPDATE ON charge_attempts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_tallies_attempts();

-- Successful transfers: the throughput.
CREATE FUNCTION run_throughput_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    succeeded BIGINT[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        succeeded := ARRAY(SELECT payout_id FROM new_rows WHERE outcome = 'succeeded');
    ELSE
        succeeded := ARRAY(SELECT n.payout_id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.outcome = 'succeeded' AND o.outcome <> 'succeeded');
    END IF;
    INSERT INTO run_throughput AS t (run_id, slot, shard, successes)
    SELECT r.run_id, floor(extract(epoch FROM a.finished_at) / 5)::bigint, pg_backend_pid() % 64, COUNT(*)
    FROM transfer_attempts a JOIN transfers r ON r.payout_id = a.payout_id
    WHERE a.payout_id = ANY (succeeded) AND a.outcome = 'succeeded' AND a.finished_at IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (run_id, slot, shard) DO UPDATE SET successes = t.successes + excluded.successes;
    RETURN NULL;
END $$;
CREATE TRIGGER transfer_attempts_throughput_insert AFTER INSERT ON transfer_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_throughput_transfers();
CREATE TRIGGER transfer_attempts_throughput_update AFTER UPDATE ON transfer_attempts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION run_throughput_transfers();

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
