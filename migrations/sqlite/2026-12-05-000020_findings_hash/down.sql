ALTER TABLE cases DROP COLUMN findings_hash;
