-- Entries admins add or change at run time (they override knowledge/ entries with the same id),
-- the audit log of admin changes, and an anonymous count of refused admin attempts.
CREATE TABLE runtime_entries (
    kind       TEXT NOT NULL CHECK (kind IN ('fact', 'quote', 'source', 'event')),
    entry_id   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, entry_id)
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    before   TEXT,
    after    TEXT,
    reason   TEXT
);
CREATE INDEX audit_by_entry ON audit (entry_id, id);

CREATE TABLE refused_admin_attempts (
    day   TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
