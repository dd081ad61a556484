ALTER TABLE case_facts DROP COLUMN kommun;
ALTER TABLE events DROP COLUMN kommun;
