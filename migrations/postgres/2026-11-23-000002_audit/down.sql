DROP TABLE outbox;
DROP TABLE deviation_history;
DROP TABLE deviations;
DROP TABLE scan_lock;
DROP TABLE scan_runs;
DROP INDEX cases_next_check;
ALTER TABLE cases DROP COLUMN next_check;
