DROP INDEX cases_unsummarised;
DROP INDEX ingest_batches_received_at;
ALTER TABLE ingest_batches DROP COLUMN earliest_at;
