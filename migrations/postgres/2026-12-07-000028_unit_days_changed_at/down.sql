CREATE INDEX events_received_at ON events (received_at);
DROP INDEX unit_days_changed_at;
ALTER TABLE unit_days DROP COLUMN changed_at;
