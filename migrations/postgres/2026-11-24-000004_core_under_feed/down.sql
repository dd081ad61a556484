DROP INDEX events_at;
DROP INDEX deviations_unqueued;
ALTER TABLE scan_runs DROP COLUMN unmailed;
ALTER TABLE scan_runs DROP COLUMN backfill;
DROP INDEX outbox_deviation;
DROP INDEX outbox_failed;
DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN failed_at, DROP COLUMN payload,
    ADD COLUMN subject TEXT NOT NULL DEFAULT '', ADD COLUMN body_text TEXT NOT NULL DEFAULT '',
    ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);
