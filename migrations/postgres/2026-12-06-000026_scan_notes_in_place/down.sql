ALTER TABLE cases RESET (fillfactor);
DROP INDEX cases_next_check;
CREATE INDEX cases_next_check ON cases (next_check);
CREATE INDEX cases_unsummarised ON cases (id) WHERE summary_hash IS NULL;
