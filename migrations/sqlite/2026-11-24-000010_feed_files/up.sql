-- The drop folder's log (feed.directory, docs/OPERATIONS.md): one row per
-- file taken, whatever became of it. A file whose content was imported
-- before ('inlast') is not imported again: the partial unique index makes
-- that hash's import one row, whichever instance got there first.
CREATE TABLE feed_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL,
    events_received BIGINT NOT NULL DEFAULT 0,
    events_stored BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    moved_to TEXT NOT NULL
);
CREATE UNIQUE INDEX feed_files_imported ON feed_files (content_hash) WHERE outcome = 'inlast';
CREATE INDEX feed_files_received ON feed_files (received_at);
