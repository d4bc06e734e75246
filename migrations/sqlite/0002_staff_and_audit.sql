-- Why: nobody reaches the dashboard without a staff account, every staff action is written to an
-- append-only audit log, sessions live in the database (so several processes share them), and
-- machines authenticate with hashed tokens (staff personal access tokens, ride-ingestion keys).
CREATE TABLE staff (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    role          TEXT NOT NULL CHECK (role IN ('admin', 'finance', 'support')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
) STRICT;

-- The shape tower-sessions-sqlx-store reads and writes (MessagePack data, RFC 3339 expiry).
CREATE TABLE staff_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expiry_date);

-- Personal access tokens (kind 'staff', owned by a staff member) and ride-ingestion API keys
-- (kind 'ingest'). Only a SHA-256 of the secret is kept; the secret is shown once.
CREATE TABLE access_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('staff', 'ingest')),
    staff_id     INTEGER REFERENCES staff (id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT,
    CHECK ((kind = 'staff') = (staff_id IS NOT NULL))
) STRICT;
CREATE INDEX access_tokens_staff ON access_tokens (staff_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('staff', 'cli', 'token', 'system', 'anonymous')),
    actor       TEXT NOT NULL,
    staff_id    INTEGER,
    source      TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT,
    object_id   TEXT,
    before      TEXT CHECK (before IS NULL OR json_valid(before)),
    after       TEXT CHECK (after IS NULL OR json_valid(after)),
    detail      TEXT
) STRICT;
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
