-- Why: staff-editable settings (refund limits, alert contacts, schedules) need one durable home
-- that every billing process reads; values are JSON so a setting can be a number, text or list.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 100),
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);
