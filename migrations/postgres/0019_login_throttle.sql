-- Why: sign-in throttling kept per process multiplied the allowance by the number of processes,
-- and keyed on the peer address locked out every client behind a reverse proxy together. The
-- counts now live in the database, shared by every process:
-- - `account:<email>`: failed sign-ins since `since` (forgotten after a quiet quarter of an
--   hour), and `blocked_until`: a growing delay after the first few, never more than a minute;
-- - `client:<address>`: sign-in attempts in the minute starting at `since`.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY NOT NULL,
    count         BIGINT NOT NULL CHECK (count >= 0),
    since         TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ
);
