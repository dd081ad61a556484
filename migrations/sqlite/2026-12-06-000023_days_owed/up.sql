-- A scan adds the day counts its chunks moved once, when it ends
-- (store::day_counts). Its first chunk marks the run as owing them, in the
-- chunk's transaction; the transaction that adds them clears the mark. A
-- run still marked (a crash, a database gone before the end) has left the
-- counts behind the cases' facts: the next scan counts them again from
-- every case's judged obligations.
ALTER TABLE scan_runs ADD COLUMN days_owed BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX scan_runs_days_owed ON scan_runs (id) WHERE days_owed;
