-- PostgreSQL twin of ../0008_outbox_dropped.sql.
-- A row the bot chose not to send gets a status of its own, 'dropped', instead of 'failed':
-- a correction overtaken by a later notice on the same fact for the same chat, or one whose
-- subject is gone or changed since. ``last_error`` says which.
ALTER TABLE outbox
    DROP CONSTRAINT outbox_status_check,
    ADD CONSTRAINT outbox_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'gone', 'failed', 'dropped'));
