-- Closing the loop: questions people asked to be told about, and corrections.

-- A question kept next to a chat, the one place this happens, and only because the person
-- pressed "Tell me if this gets answered". Deleted once answered, on /forgetme, or at expires_at.
CREATE TABLE waiting_questions (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    question   TEXT NOT NULL,
    language   TEXT NOT NULL CHECK (language IN ('en', 'ru', 'be')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (platform, chat_id, question)
);
CREATE INDEX waiting_by_expiry ON waiting_questions (expires_at);

-- Entries confirmed by an admin that the waiting questions were not yet matched against. Written
-- in the same transaction as the entry, so a crash before the matching only delays it.
CREATE TABLE rematch_queue (
    entry_id  TEXT PRIMARY KEY,
    queued_at INTEGER NOT NULL
);

-- Chats that follow topics but asked for no correction notices.
CREATE TABLE correction_optouts (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, chat_id)
);

-- The outbox now carries three kinds of message. ``event_id`` names what a message is about: the
-- event of an alert, "answer:<waiting question id>" or "correction:<fact id>:<audit id>";
-- UNIQUE (event_id, platform, chat_id) stays the idempotency key. ``payload`` holds what an
-- answer-found notice or a correction says (JSON); an alert's event is in published_events.
CREATE TABLE outbox_v4 (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL DEFAULT 'alert'
                    CHECK (kind IN ('alert', 'answer', 'correction')),
    event_id        TEXT NOT NULL,
    payload         TEXT,
    platform        TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'gone', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    last_error      TEXT,
    UNIQUE (event_id, platform, chat_id)
);
INSERT INTO outbox_v4 (id, kind, event_id, platform, chat_id, status, attempts, next_attempt_at,
                       updated_at, last_error)
    SELECT id, 'alert', event_id, platform, chat_id, status, attempts, next_attempt_at,
           updated_at, last_error
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
