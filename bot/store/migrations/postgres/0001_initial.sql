-- PostgreSQL twin of ../0001_initial.sql: the same tables, columns and keys. Seconds since the
-- epoch are BIGINT (INTEGER ends in 2038).

-- Per-chat language choice, aggregate usage counts and small key-value state.
-- Nothing here links a question to who asked it.
CREATE TABLE chat_settings (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    language   TEXT NOT NULL CHECK (language IN ('en', 'ru', 'be')),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (platform, chat_id)
);

-- Questions per day, split by answered or declined.
CREATE TABLE question_counts (
    day      TEXT NOT NULL,
    answered INTEGER NOT NULL CHECK (answered IN (0, 1)),
    count    BIGINT NOT NULL,
    PRIMARY KEY (day, answered)
);

-- Answers per entry per day.
CREATE TABLE answer_counts (
    day      TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (day, entry_id)
);

-- Declined questions by normalised text only (no chat, no user), expiring.
CREATE TABLE declined_questions (
    day        TEXT NOT NULL,
    normalized TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (day, normalized)
);

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
