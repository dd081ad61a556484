ALTER TABLE cases ADD COLUMN next_check TIMESTAMP;
CREATE INDEX cases_next_check ON cases (next_check);

CREATE TABLE scan_runs (
    id BIGSERIAL PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    as_of TIMESTAMP NOT NULL,
    full_scan BOOLEAN NOT NULL,
    cases_evaluated INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    filed INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    error_text TEXT,
    status TEXT NOT NULL
);

CREATE TABLE scan_lock (
    id INTEGER PRIMARY KEY NOT NULL,
    holder TEXT,
    expires_at TIMESTAMP
);
INSERT INTO scan_lock (id, holder, expires_at) VALUES (1, NULL, NULL);

CREATE TABLE deviations (
    id BIGSERIAL PRIMARY KEY,
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
CREATE INDEX deviations_case ON deviations (case_id);
CREATE INDEX deviations_rule_due ON deviations (rule, due);

CREATE TABLE deviation_history (
    id BIGSERIAL PRIMARY KEY,
    deviation_id BIGINT NOT NULL REFERENCES deviations (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT
);
CREATE INDEX deviation_history_deviation ON deviation_history (deviation_id);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    deviation_ids TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    in_reply_to TEXT,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);
