-- Why: a draft's lines and an approval's billed rides are written from rows just read or just
-- inserted, by one function each, and at a million passengers they are about 14 million rows
-- (5.5 million invoice lines, 4.2 million payout lines, 4.2 million billed rides). Each foreign
-- key was a lookup per row (a ride's at a random place in the rides' index), and the index of
-- invoice lines by ride one more B-tree written at random places: together most of storing a
-- week. The rows are now kept by their primary keys alone:
--   - lines name their ride, invoice or payout without a foreign key: rides are never deleted, a
--     line's invoice or payout is inserted in the same transaction, and replacing a draft deletes
--     its lines itself before its invoices and payouts (`Db::store_preview`);
--   - `billed_rides` keeps what bills a ride once, its primary key, without the foreign keys to
--     the ride and the week (the approval writes them from the week's lines, in its transaction);
--   - invoice lines are no longer indexed by ride: a customer's ride finds its line through the
--     customer's invoices (`invoices_user`) and the line's primary key.
-- The three tables are WITHOUT ROWID: one B-tree each instead of a table and its key's index.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE invoice_lines_rebuilt (
    invoice_id   INTEGER NOT NULL,
    ride_id      TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    attendance   TEXT NOT NULL CHECK (attendance IN ('completed', 'no_show')),
    ended_at     TEXT NOT NULL,
    late         INTEGER NOT NULL CHECK (late IN (0, 1)),
    PRIMARY KEY (invoice_id, ride_id)
) STRICT, WITHOUT ROWID;
INSERT INTO invoice_lines_rebuilt (invoice_id, ride_id, amount_minor, attendance, ended_at, late)
    SELECT invoice_id, ride_id, amount_minor, attendance, ended_at, late FROM invoice_lines;
DROP TABLE invoice_lines;
ALTER TABLE invoice_lines_rebuilt RENAME TO invoice_lines;

CREATE TABLE payout_lines_rebuilt (
    payout_id   INTEGER NOT NULL,
    ride_id     TEXT NOT NULL,
    gross_minor INTEGER NOT NULL CHECK (gross_minor > 0),
    fee_minor   INTEGER NOT NULL CHECK (fee_minor >= 0),
    net_minor   INTEGER NOT NULL CHECK (net_minor >= 0),
    late        INTEGER NOT NULL CHECK (late IN (0, 1)),
    CHECK (fee_minor + net_minor = gross_minor),
    PRIMARY KEY (payout_id, ride_id)
) STRICT, WITHOUT ROWID;
INSERT INTO payout_lines_rebuilt (payout_id, ride_id, gross_minor, fee_minor, net_minor, late)
    SELECT payout_id, ride_id, gross_minor, fee_minor, net_minor, late FROM payout_lines;
DROP TABLE payout_lines;
ALTER TABLE payout_lines_rebuilt RENAME TO payout_lines;

CREATE TABLE billed_rides_rebuilt (
    ride_id TEXT PRIMARY KEY NOT NULL,
    week    TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO billed_rides_rebuilt (ride_id, week) SELECT ride_id, week FROM billed_rides;
DROP TABLE billed_rides;
ALTER TABLE billed_rides_rebuilt RENAME TO billed_rides;
