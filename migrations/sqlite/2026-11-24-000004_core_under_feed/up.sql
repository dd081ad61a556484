-- The outbox keeps references (deviation ids, recipients, Message-ID); the
-- mail is rendered when it is sent. A permanent refusal marks a row failed.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    deviation_ids TEXT NOT NULL,
    recipients TEXT NOT NULL,
    payload TEXT,
    in_reply_to TEXT,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    failed_at TIMESTAMP,
    last_error TEXT
);
INSERT INTO outbox_new (id, message_id, kind, deviation_ids, recipients, payload, in_reply_to, created_at,
                        attempts, next_attempt_at, claimed_until, sent_at, cancelled_at, failed_at, last_error)
SELECT id, message_id, kind, deviation_ids, recipients, NULL, in_reply_to, created_at,
       attempts, next_attempt_at, claimed_until, sent_at, cancelled_at, NULL, last_error
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;
-- A withdrawal finds the report of its deviation.
CREATE INDEX outbox_deviation ON outbox (deviation_ids);

-- Digests find what no mail carries yet; scans count what they filed unmailed.
CREATE INDEX deviations_unqueued ON deviations (id) WHERE queued_at IS NULL;
ALTER TABLE scan_runs ADD COLUMN unmailed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_runs ADD COLUMN backfill BOOLEAN NOT NULL DEFAULT 0;

-- Staffing days and the earliest event are found by time.
CREATE INDEX events_at ON events (at);
