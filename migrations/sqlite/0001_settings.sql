-- Why: staff-editable settings (refund limits, alert contacts, schedules) need one durable home
-- that every billing process reads; values are JSON so a setting can be a number, text or list.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 100),
    value      TEXT NOT NULL CHECK (json_valid(value)),
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;
