-- People: local accounts with argon2id hashes, a role and units as scope.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    disabled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE user_units (
    user_id BIGINT NOT NULL REFERENCES users (id),
    unit_id TEXT NOT NULL,
    PRIMARY KEY (user_id, unit_id)
);
-- A login session: the cookie's SHA-256, never the cookie itself.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX sessions_user ON sessions (user_id);
-- Handling state of a deviation beside its filed facts (SPEC §6.1).
CREATE TABLE deviation_handling (
    deviation_id BIGINT PRIMARY KEY NOT NULL REFERENCES deviations (id),
    assigned_to BIGINT REFERENCES users (id),
    atgard TEXT,
    reason TEXT,
    changed_at TIMESTAMP NOT NULL
);
CREATE TABLE deviation_comments (
    id BIGSERIAL PRIMARY KEY,
    deviation_id BIGINT NOT NULL REFERENCES deviations (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX deviation_comments_deviation ON deviation_comments (deviation_id);
CREATE INDEX deviations_status_unit ON deviations (status, unit);
-- The access log names a person or a token.
CREATE TABLE access_log_new (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    token_id BIGINT,
    user_id BIGINT,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL
);
INSERT INTO access_log_new (id, at, token_id, user_id, actor, role, action, object)
    SELECT id, at, token_id, NULL, 'token:' || token_id, role, action, object FROM access_log;
DROP TABLE access_log;
ALTER TABLE access_log_new RENAME TO access_log;
SELECT setval(pg_get_serial_sequence('access_log', 'id'), COALESCE((SELECT MAX(id) FROM access_log), 0) + 1, false);
CREATE INDEX access_log_at ON access_log (at);
CREATE INDEX access_log_actor ON access_log (actor, at);
CREATE INDEX access_log_object ON access_log (object, at);
