-- Back to UNIQUE (fingerprint) and deviations_case, rebuilt as up.sql does.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TEMP TABLE seq_kept AS SELECT seq FROM sqlite_sequence WHERE name = 'deviations';
DROP TABLE IF EXISTS deviations_new;
CREATE TABLE deviations_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
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
CREATE INDEX deviations_case ON deviations (case_id);
CREATE INDEX deviations_unqueued ON deviations (id) WHERE queued_at IS NULL;
CREATE INDEX deviations_status_unit ON deviations (status, unit);
CREATE INDEX deviations_staffing_due ON deviations (rule, due) WHERE case_id IS NULL;
COMMIT;
PRAGMA foreign_keys = ON;
