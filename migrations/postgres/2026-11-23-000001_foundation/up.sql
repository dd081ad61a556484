CREATE TABLE units (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    huvudman TEXT NOT NULL,
    parent TEXT,
    email TEXT,
    storhelg BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE ingest_batches (
    id BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMP NOT NULL,
    source TEXT NOT NULL,
    lines INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    duplicates INTEGER NOT NULL
);

CREATE TABLE cases (
    id TEXT PRIMARY KEY NOT NULL,
    patient_hash TEXT,
    first_at TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX cases_changed_at ON cases (changed_at);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT,
    event_type TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    at_offset INTEGER NOT NULL,
    unit TEXT NOT NULL,
    to_units TEXT NOT NULL,
    ref_id TEXT,
    value TEXT,
    patient_hash TEXT,
    content_hash TEXT NOT NULL,
    raw TEXT NOT NULL,
    batch_id BIGINT NOT NULL REFERENCES ingest_batches (id),
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX events_case_at ON events (case_id, at);
CREATE INDEX events_unit_at ON events (unit, at);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    unit TEXT,
    label TEXT,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

CREATE TABLE access_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    token_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL
);
