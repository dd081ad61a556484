-- The patient's kommun (SPEC §3.2 `kommun` on an inskrivning, §7): whom
-- betalningsansvar and readmissions count a case for. On events only where
-- the source gave it; on case_facts the kommun the scan settled on (the
-- inskrivning's, else the first kommun among the UK's recipients).
ALTER TABLE events ADD COLUMN kommun TEXT;
ALTER TABLE case_facts ADD COLUMN kommun TEXT;
