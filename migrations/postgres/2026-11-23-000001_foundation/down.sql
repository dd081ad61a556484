DROP TABLE access_log;
DROP TABLE api_tokens;
DROP TABLE events;
DROP TABLE cases;
DROP TABLE ingest_batches;
DROP TABLE units;
