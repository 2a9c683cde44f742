-- Topic subscriptions, published events and the alert outbox (one row per event and chat).
CREATE TABLE subscriptions (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, chat_id, topic)
);
CREATE INDEX subscriptions_by_topic ON subscriptions (topic);

-- Every event ever published (from knowledge/, `events publish` or /addevent), as JSON.
CREATE TABLE published_events (
    event_id     TEXT PRIMARY KEY,
    payload      TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    recipients   INTEGER NOT NULL
);

-- The durable outbox. UNIQUE (event_id, platform, chat_id) is the idempotency key.
-- status: pending -> sending -> sent | gone | failed; sending rows found at start-up were
-- interrupted and go back to pending.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES published_events (event_id),
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
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
