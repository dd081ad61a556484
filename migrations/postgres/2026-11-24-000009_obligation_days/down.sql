DROP TABLE obligation_days;
ALTER TABLE case_facts DROP COLUMN judged;
DELETE FROM obligations WHERE case_id <> '';
DELETE FROM case_facts;
UPDATE cases SET summary_hash = NULL;
