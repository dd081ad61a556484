DROP TABLE staffing_reminders;
ALTER TABLE cases DROP COLUMN summary_hash;
ALTER TABLE cases DROP COLUMN age_band;
DROP TABLE case_facts;
DROP TABLE obligations;
