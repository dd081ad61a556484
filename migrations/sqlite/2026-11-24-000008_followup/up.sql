-- Follow-up (SPEC §7). Every obligation a scan judged, met or not, so that
-- adherence can be computed for any period: a case's rows are replaced
-- whenever its outcome changes (a re-scan or a late event corrects them,
-- never counts twice). Staffing rows have case_id ''.
CREATE TABLE obligations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    case_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    unit TEXT,
    due TIMESTAMP NOT NULL,
    -- met, late, missing; pending while the due (plus grace) has not passed
    outcome TEXT NOT NULL,
    done_at TIMESTAMP
);
CREATE INDEX obligations_case ON obligations (case_id);
CREATE INDEX obligations_due ON obligations (due);
-- What the lead-time, betalningsansvar and readmission figures need of a
-- case, derived by the scan from its events (one row per case).
CREATE TABLE case_facts (
    case_id TEXT PRIMARY KEY NOT NULL,
    -- JSON array of the huvudmän of the kommun units the UK went to
    kommuner TEXT NOT NULL,
    patient_hash TEXT,
    age_band TEXT,
    inskrivning_at TIMESTAMP,
    uk_at TIMESTAMP,
    dag0 TEXT,
    utskrivning_at TIMESTAMP,
    utskrivning_date TEXT,
    -- the local date of the case's avslut (no utskrivningsklara dagar after it)
    avslut_date TEXT,
    im_in_time BOOLEAN,
    sip_needed BOOLEAN NOT NULL,
    kallelse_in_time BOOLEAN
);
-- No secondary indexes: the reports read a county's rows in one pass, and
-- every index would cost the first scan a random insert per case.
-- The age band derived at ingest (never the number), and a hash of what the
-- scan last recorded for the case: unchanged cases are not rewritten, and a
-- case never summarised is always a candidate of the next scan.
ALTER TABLE cases ADD COLUMN age_band TEXT;
ALTER TABLE cases ADD COLUMN summary_hash TEXT;
-- Förvarning: a storhelg staffing reminder goes once per unit and day.
CREATE TABLE staffing_reminders (
    unit_id TEXT NOT NULL,
    day TEXT NOT NULL,
    queued_at TIMESTAMP NOT NULL,
    PRIMARY KEY (unit_id, day)
);
