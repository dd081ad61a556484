-- Adherence as exact aggregates (SPEC §7 allows "or exact aggregates per
-- rule, unit and day"): the judged obligations of cases counted per local
-- day of their due, rule and unit ('' for none), kept from the difference
-- between what a scan judged of a case and what the scan before it did.
-- `obligations` keeps only what is still pending (for förvarning) and the
-- storhelg staffing obligations (the quarterly staffing table).
CREATE TABLE obligation_days (
    day TEXT NOT NULL,
    rule TEXT NOT NULL,
    unit TEXT NOT NULL,
    met BIGINT NOT NULL,
    late BIGINT NOT NULL,
    missing BIGINT NOT NULL,
    PRIMARY KEY (day, rule, unit)
);
-- What the aggregates hold of the case: its judged obligations, one per
-- line, a JSON array [day, rule, unit, outcome], subtracted when the case
-- is summarised again.
ALTER TABLE case_facts ADD COLUMN judged TEXT NOT NULL DEFAULT '';
-- The next scan summarises every case again and fills the aggregates.
DELETE FROM obligations WHERE case_id <> '';
DELETE FROM case_facts;
UPDATE cases SET summary_hash = NULL;
