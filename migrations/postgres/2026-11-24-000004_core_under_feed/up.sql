-- The outbox keeps references (deviation ids, recipients, Message-ID); the
-- mail is rendered when it is sent. A permanent refusal marks a row failed.
ALTER TABLE outbox DROP COLUMN subject, DROP COLUMN body_text, DROP COLUMN body_html,
    ADD COLUMN payload TEXT, ADD COLUMN failed_at TIMESTAMP;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;
-- A withdrawal finds the report of its deviation.
CREATE INDEX outbox_deviation ON outbox (deviation_ids);

-- Digests find what no mail carries yet; scans count what they filed unmailed.
CREATE INDEX deviations_unqueued ON deviations (id) WHERE queued_at IS NULL;
ALTER TABLE scan_runs ADD COLUMN unmailed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_runs ADD COLUMN backfill BOOLEAN NOT NULL DEFAULT FALSE;

-- Staffing days and the earliest event are found by time.
CREATE INDEX events_at ON events (at);
