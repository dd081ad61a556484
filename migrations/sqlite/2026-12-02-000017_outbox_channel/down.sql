DROP INDEX outbox_pending_channel;
ALTER TABLE outbox DROP COLUMN channel;
