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
-- checked before the commit (a failure rolls it back: store::migrate).
-- Run again after a crash between its commit and diesel noting it, it
-- rebuilds the rebuilt table the same way (no later migration ran).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
-- A second process that listed this migration as pending before the first
-- ran it stops here (it would rebuild a table later migrations may have
-- changed): a count above zero fails the CHECK and rolls back.
CREATE TEMP TABLE migration_ran (n INTEGER NOT NULL CHECK (n = 0));
INSERT INTO migration_ran
SELECT count(*) FROM __diesel_schema_migrations WHERE version = '20261206000022';
DROP TABLE migration_ran;
-- DROP TABLE forgets the table's AUTOINCREMENT counter: kept, so an id of
-- a deviation deleted by hand is never given again.
CREATE TEMP TABLE seq_kept AS SELECT seq FROM sqlite_sequence WHERE name = 'deviations';
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
INSERT INTO sqlite_sequence (name, seq)
SELECT 'deviations', seq FROM seq_kept
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'deviations');
UPDATE sqlite_sequence SET seq = (SELECT seq FROM seq_kept)
WHERE name = 'deviations' AND seq < (SELECT seq FROM seq_kept);
DROP TABLE seq_kept;
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
