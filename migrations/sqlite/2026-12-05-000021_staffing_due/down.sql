DROP INDEX deviations_staffing_due;
CREATE INDEX deviations_rule_due ON deviations (rule, due);
