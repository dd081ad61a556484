-- What an incremental scan asks of new data, answered from indexes that
-- follow what is new rather than from the whole history:
-- each batch keeps the earliest `at` of the events it stored, so the
-- earliest event that arrived since the last scan is read from the batches
-- received since (index on received_at), not by walking events;
-- cases never summarised are found by a partial index.
ALTER TABLE ingest_batches ADD COLUMN earliest_at TIMESTAMP;
UPDATE ingest_batches SET earliest_at = m.earliest
  FROM (SELECT batch_id, min(at) AS earliest FROM events GROUP BY batch_id) AS m
  WHERE m.batch_id = ingest_batches.id;
CREATE INDEX ingest_batches_received_at ON ingest_batches (received_at);
CREATE INDEX cases_unsummarised ON cases (id) WHERE summary_hash IS NULL;
