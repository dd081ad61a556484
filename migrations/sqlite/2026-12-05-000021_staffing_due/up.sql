-- The (rule, due) index of deviations served the storhelg staffing
-- deviations of a span of days (store::deviations::by_rule_due), which have
-- no case, and the deviation list filtered by rule alone. Over every
-- deviation it was a random insert per deviation filed (a case's dues are
-- spread over the year, and a scan walks cases in id order): 8 of the 61
-- seconds of a first full scan of 1 000 000 cases on SQLite. Kept for the
-- case-less deviations only; the list filtered by rule alone now reads the
-- table, as it does scoped to units (docs/decisions.md).
DROP INDEX deviations_rule_due;
CREATE INDEX deviations_staffing_due ON deviations (rule, due) WHERE case_id IS NULL;
