DROP INDEX scan_runs_days_owed;
ALTER TABLE scan_runs DROP COLUMN days_owed;
