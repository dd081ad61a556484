DROP INDEX access_log_object;
DROP INDEX access_log_actor;
DROP INDEX access_log_at;
CREATE TABLE access_log_old (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    token_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL
);
INSERT INTO access_log_old (id, at, token_id, role, action, object)
    SELECT id, at, COALESCE(token_id, 0), role, action, object FROM access_log;
DROP TABLE access_log;
ALTER TABLE access_log_old RENAME TO access_log;
SELECT setval(pg_get_serial_sequence('access_log', 'id'), COALESCE((SELECT MAX(id) FROM access_log), 0) + 1, false);
DROP INDEX deviations_status_unit;
DROP TABLE deviation_comments;
DROP TABLE deviation_handling;
DROP TABLE sessions;
DROP TABLE user_units;
DROP TABLE users;
