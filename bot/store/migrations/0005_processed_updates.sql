-- Telegram update ids already taken by a process. Telegram delivers a webhook update again when
-- it saw no answer in time, and behind a reverse proxy another process may get the copy: the
-- first to insert the id handles the update. Rows are purged after two days (Telegram keeps an
-- update for at most 24 hours). No chat, user or text: only the number.
CREATE TABLE processed_updates (
    update_id  INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE INDEX processed_updates_by_age ON processed_updates (created_at);
