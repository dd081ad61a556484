-- A deviation's fingerprint is unique with its case, not over the table
-- (the reasons: the SQLite migration of the same name). The fingerprint
-- hashes the case id, so one value belongs to one case: (case_id,
-- fingerprint) holds the uniqueness for a deviation with a case, a partial
-- index over fingerprint for those without (storhelg staffing), and
-- (case_id, fingerprint) serves every look-up by case.
ALTER TABLE deviations DROP CONSTRAINT deviations_fingerprint_key;
CREATE UNIQUE INDEX deviations_case_fingerprint ON deviations (case_id, fingerprint);
CREATE UNIQUE INDEX deviations_caseless_fingerprint ON deviations (fingerprint) WHERE case_id IS NULL;
DROP INDEX deviations_case;
