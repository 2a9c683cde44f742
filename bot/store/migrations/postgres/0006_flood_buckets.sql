-- PostgreSQL twin of ../0006_flood_buckets.sql (which is empty: SQLite keeps them in memory).
-- Per-sender flood buckets shared by every process on this database, so that a sender whose
-- messages are spread over several processes gets questions_per_minute in all. The sender is a
-- keyed pseudonym (never the platform's user id), and no text is stored. Times are the
-- database's clock (epoch seconds), so processes on machines with skewed clocks agree. A row is
-- useless once its bucket is full again (full_at): housekeeping deletes it then.
CREATE TABLE flood_buckets (
    sender     TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    full_at    DOUBLE PRECISION NOT NULL,
    -- The last decision: 1 went ahead, 0 was told to slow down, -1 was ignored. The notice is
    -- sent only when this goes from 1 to 0: once per flood.
    verdict    SMALLINT NOT NULL CHECK (verdict IN (1, 0, -1))
);
CREATE INDEX flood_buckets_by_full_at ON flood_buckets (full_at);
