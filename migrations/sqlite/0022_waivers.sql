-- Why: before a week is charged, support takes a ride off an invoice when a customer writes "the
-- driver never came", instead of refunding after the money moved. A waiver takes one line of a
-- draft week's invoice (a ride share, or a no-show fee) or the whole invoice off the week's plan.
-- Each request is stored once (its request id is unique); a line, or an invoice, is waived at
-- most once while a waiver of it is applied or waiting for approval (the partial unique indexes);
-- an approval is another person's (the CHECK). Approving the week freezes its waivers: a waiver
-- is never changed once its week is approved (the service checks it under the freeze lock).
CREATE TABLE waivers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id      TEXT NOT NULL UNIQUE,
    -- The billing week whose draft it changes, 'YYYY-Www'.
    week            TEXT NOT NULL CHECK (length(week) = 8),
    user_id         TEXT NOT NULL REFERENCES users (id),
    -- The line's ride; NULL for a whole invoice.
    ride_id         TEXT REFERENCES rides (ride_id),
    part            TEXT NOT NULL CHECK (part IN ('ride_share', 'no_show_fee', 'invoice')),
    -- What it took off when it was asked for (the line, or the invoice's total then).
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    reason          TEXT NOT NULL CHECK (reason IN ('driver_no_show', 'service_issue', 'duplicate_ride', 'goodwill', 'other')),
    note            TEXT NOT NULL CHECK (length(note) <= 1000),
    state           TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'applied', 'rejected', 'withdrawn')),
    requested_by    TEXT NOT NULL,
    requested_by_id INTEGER REFERENCES staff (id),
    requested_at    TEXT NOT NULL,
    -- Who approved, rejected or withdrew it.
    decided_by      TEXT,
    decided_by_id   INTEGER REFERENCES staff (id),
    decided_at      TEXT,
    decision_note   TEXT,
    CHECK ((part = 'invoice') = (ride_id IS NULL)),
    CHECK (state NOT IN ('rejected', 'withdrawn') OR decided_at IS NOT NULL),
    -- Four eyes: whoever approves or rejects is not the requester (a withdrawal may be theirs).
    CHECK (state = 'withdrawn' OR decided_by IS NULL OR decided_by <> requested_by)
) STRICT;

CREATE UNIQUE INDEX waivers_one_per_line
    ON waivers (week, user_id, ride_id) WHERE ride_id IS NOT NULL AND state IN ('awaiting_approval', 'applied');
CREATE UNIQUE INDEX waivers_one_per_invoice
    ON waivers (week, user_id) WHERE ride_id IS NULL AND state IN ('awaiting_approval', 'applied');
CREATE INDEX waivers_week ON waivers (week, state);
