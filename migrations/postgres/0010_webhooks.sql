-- Why: the provider's webhooks arrive at least once and in any order. Each event is recorded
-- once by its id (the primary key), so a redelivered event changes nothing; what an event does
-- is decided by the state it carries, never by the order it came in.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY NOT NULL,
    type        TEXT NOT NULL,
    created     BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL
);
