-- A row the bot chose not to send gets a status of its own, 'dropped', instead of 'failed':
-- a correction overtaken by a later notice on the same fact for the same chat (the later one
-- says what is true now; sending both would say it twice), or one whose subject is gone or
-- changed since (a withdrawal notice for a fact restored meanwhile would be untrue).
-- ``last_error`` says which. SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE outbox_v8 (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL DEFAULT 'alert'
                    CHECK (kind IN ('alert', 'answer', 'correction')),
    event_id        TEXT NOT NULL,
    payload         TEXT,
    platform        TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'gone', 'failed', 'dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    last_error      TEXT,
    UNIQUE (event_id, platform, chat_id)
);
INSERT INTO outbox_v8 (id, kind, event_id, payload, platform, chat_id, status, attempts,
                       next_attempt_at, updated_at, last_error)
    SELECT id, kind, event_id, payload, platform, chat_id, status, attempts, next_attempt_at,
           updated_at, last_error
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v8 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
