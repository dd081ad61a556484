-- A deviation's fingerprint is unique with its case, not over the table.
-- UNIQUE (fingerprint) was a random insert per deviation filed (a 64-hex
-- hash, in a walk of cases by id): 8 of the 58 seconds of a first full
-- scan of 1 000 000 cases on SQLite, and 3.6 of the 8.1 GB it wrote. The
-- fingerprint hashes the case id (audit::plan::fingerprint), so one value
-- belongs to one case: (case_id, fingerprint) holds the same uniqueness for
-- a deviation with a case, a partial index over fingerprint for those
-- without (storhelg staffing), and (case_id, fingerprint) also serves every
-- look-up by case (deviations_case goes).
--
-- SQLite cannot drop a column's UNIQUE: the table is rebuilt, by the
-- procedure of SQLite's ALTER TABLE documentation. Foreign keys are off
-- while it runs (DROP TABLE would otherwise delete deviation_parties' rows,
-- ON DELETE CASCADE, and refuse for history, handling and comments), and
-- checked before the commit (a failure rolls it back: store::migrate). Run again after a crash before diesel noted
-- it, it rebuilds the rebuilt table the same way.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS deviations_new;
CREATE TABLE deviations_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    case_id TEXT,
    unit TEXT,
    due TIMESTAMP NOT NULL,
    finding_status TEXT NOT NULL,
    done_at TIMESTAMP,
    late_minutes BIGINT,
    status TEXT NOT NULL,
    sannolikhet INTEGER NOT NULL,
    konsekvens INTEGER NOT NULL,
    recipients TEXT NOT NULL,
    queued_at TIMESTAMP,
    scan_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO deviations_new (id, fingerprint, rule, case_id, unit, due, finding_status, done_at, late_minutes,
                            status, sannolikhet, konsekvens, recipients, queued_at, scan_id, created_at)
SELECT id, fingerprint, rule, case_id, unit, due, finding_status, done_at, late_minutes,
       status, sannolikhet, konsekvens, recipients, queued_at, scan_id, created_at
FROM deviations ORDER BY id;
DROP TABLE deviations;
ALTER TABLE deviations_new RENAME TO deviations;
CREATE UNIQUE INDEX deviations_case_fingerprint ON deviations (case_id, fingerprint);
CREATE UNIQUE INDEX deviations_caseless_fingerprint ON deviations (fingerprint) WHERE case_id IS NULL;
CREATE INDEX deviations_unqueued ON deviations (id) WHERE queued_at IS NULL;
CREATE INDEX deviations_status_unit ON deviations (status, unit);
CREATE INDEX deviations_staffing_due ON deviations (rule, due) WHERE case_id IS NULL;
-- Every row that referred to a deviation still does: a count above zero
-- fails the CHECK, and the migration stops before its commit.
CREATE TEMP TABLE fk_orphans (n INTEGER NOT NULL CHECK (n = 0));
INSERT INTO fk_orphans
SELECT (SELECT count(*) FROM pragma_foreign_key_check('deviation_history'))
     + (SELECT count(*) FROM pragma_foreign_key_check('deviation_handling'))
     + (SELECT count(*) FROM pragma_foreign_key_check('deviation_comments'))
     + (SELECT count(*) FROM pragma_foreign_key_check('deviation_parties'));
DROP TABLE fk_orphans;
COMMIT;
PRAGMA foreign_keys = ON;
