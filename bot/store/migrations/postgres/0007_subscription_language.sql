-- PostgreSQL twin of ../0007_subscription_language.sql.
-- The language a chat subscribed in, so that its alerts and corrections come in that language
-- when it chose none with /language (only an explicit choice is kept in chat_settings). One
-- word per chat, deleted with its subscriptions; NULL for rows from before this migration.
ALTER TABLE subscriptions ADD COLUMN language TEXT;
