CREATE INDEX deviations_case ON deviations (case_id);
DROP INDEX deviations_caseless_fingerprint;
DROP INDEX deviations_case_fingerprint;
ALTER TABLE deviations ADD CONSTRAINT deviations_fingerprint_key UNIQUE (fingerprint);
