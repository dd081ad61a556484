ALTER TABLE deviation_handling DROP COLUMN escalated_at;
ALTER TABLE deviation_handling DROP COLUMN reminded_at;
