-- A hash over each case's findings past due + grace as filing compares them
-- with its deviations (audit::summary::findings_hash), noted by the scan
-- that filed them. A scan whose findings hash the same skips the case's
-- filing: its deviations already say what the findings say. NULL (every
-- case after this migration, a case a backfill or a person's change of
-- status touched): the next scan files the case in full.
ALTER TABLE cases ADD COLUMN findings_hash TEXT;
