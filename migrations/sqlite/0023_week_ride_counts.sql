-- Why: a draft week is current when its rides are the ones it was made from; counting them
-- (millions of index entries at a million passengers) on every opening of the week's page made
-- the page cost a full index range. A count per week range is kept instead: a row exists once
-- the range was counted in full, under the write lock, and every ride stored afterwards adds one
-- to the rows whose range holds its end, in the transaction that stores it. Rides are never
-- deleted, so the count names the set. The approval still counts the rides itself.
CREATE TABLE week_ride_counts (
    starts_at TEXT NOT NULL,
    ends_at   TEXT NOT NULL CHECK (ends_at > starts_at),
    rides     INTEGER NOT NULL CHECK (rides >= 0),
    PRIMARY KEY (starts_at, ends_at)
) WITHOUT ROWID;
