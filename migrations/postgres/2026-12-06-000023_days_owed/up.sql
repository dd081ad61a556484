-- A scan adds the day counts its chunks moved once, when it ends
-- (store::day_counts); the reasons: the SQLite migration of the same name.
ALTER TABLE scan_runs ADD COLUMN days_owed BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX scan_runs_days_owed ON scan_runs (id) WHERE days_owed;
